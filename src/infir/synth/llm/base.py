"""The one protocol every LLM backend speaks; the pipeline never knows which one it talks to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Reply:
    """One chat completion: the text and what it cost."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Backend-specific details worth keeping in a journal (finish reason, request id, ...).
    meta: dict = field(default_factory=dict)


class LLMError(RuntimeError):
    """A request that failed for good (after the backend's own retries)."""


@runtime_checkable
class LLMClient(Protocol):
    """Async chat completion. `model` names what answers, for provenance and journal keys."""

    model: str

    async def complete(self, messages: list[Message], **params) -> Reply: ...

    async def aclose(self) -> None: ...
