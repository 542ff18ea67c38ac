"""LLM backends behind one protocol (`LLMClient`), and the factory the pipeline and CLI call."""

from __future__ import annotations

from typing import Literal

from infir.synth.llm.base import LLMClient, LLMError, Message, Reply
from infir.synth.llm.local_client import LocalChatClient
from infir.synth.llm.openai_client import OpenAIChatClient, RetryPolicy
from infir.synth.llm.usage import UsageStats

__all__ = [
    "LLMClient",
    "LLMError",
    "LocalChatClient",
    "Message",
    "OpenAIChatClient",
    "Reply",
    "RetryPolicy",
    "UsageStats",
    "make_client",
]


def make_client(
    backend: Literal["openai", "local"],
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    **opts,
) -> LLMClient:
    """Build a chat backend; every one has ``.model``, ``.stats`` (`UsageStats`), ``complete``, ``aclose``.

    Args:
        backend: ``openai`` (any OpenAI-compatible HTTP server) or ``local`` (transformers).
        model: model name for ``openai`` (else env ``INFIR_LLM_MODEL``); for ``local`` a model
            folder, ``.gguf`` file or hub id, None for the embedded SmolLM2.
        base_url, api_key: ``openai`` only (else env, see `OpenAIChatClient`).
        concurrency: requests in flight for ``openai``; ``local`` always generates one at a time.
        **opts: passed to the client (``timeout``, ``retry``, ``price_in_per_1m``, ``seed`` for
            ``openai``; ``device``, ``max_new_tokens`` for ``local``).
    """
    if backend == "openai":
        return OpenAIChatClient(
            model=model, base_url=base_url, api_key=api_key, concurrency=concurrency, **opts
        )
    if backend == "local":
        if base_url or api_key:
            raise ValueError("the local backend takes no base_url or api_key")
        return LocalChatClient(model=model, **opts)
    raise ValueError(f"unknown LLM backend {backend!r}: expected 'openai' or 'local'")
