"""The OpenAI-compatible client against a real scripted chat-completions server process."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from infir.synth.llm import LLMClient, LLMError, OpenAIChatClient, RetryPolicy, make_client
from infir.synth.llm.openai_client import parse_retry_after
from infir.synth.llm.usage import known_prices

USER = [{"role": "user", "content": "write one instruction"}]
# Short backoff so the tests measure the policy, not the wall clock; Retry-After still applies in full.
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


def client_for(server, **kwargs) -> OpenAIChatClient:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("seed", 0)
    return OpenAIChatClient(model="test-model", base_url=server.base_url, api_key="sk-test", **kwargs)


async def complete_once(client: OpenAIChatClient, **params):
    try:
        return await client.complete(USER, **params)
    finally:
        await client.aclose()


def test_good_reply_returns_text_usage_and_passes_params_through(chat_server):
    server = chat_server(script=[{"content": '{"instruction": "find recent studies"}'}])
    client = client_for(server)
    reply = asyncio.run(
        complete_once(client, temperature=0.0, max_tokens=64, seed=7, response_format={"type": "json_object"})
    )
    assert isinstance(client, LLMClient)
    assert reply.text == '{"instruction": "find recent studies"}'
    assert reply.model == "test-model"
    # The server counts whitespace words: 3 in the prompt, 4 in the reply.
    assert (reply.prompt_tokens, reply.completion_tokens) == (3, 4)
    assert reply.meta["finish_reason"] == "stop" and reply.meta["attempts"] == 1
    assert client.stats.as_dict() | {"errors": None} == {
        "requests": 1,
        "failed": 0,
        "attempts": 1,
        "retries": 0,
        "errors": None,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "in_flight": 0,
        "estimated_cost_usd": None,
    }
    (sent,) = server.requests()
    assert sent["model"] == "test-model" and sent["messages"] == USER
    assert sent["response_format"] == {"type": "json_object"}
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.0, 64, 7)


def test_malformed_json_content_is_returned_verbatim_not_retried(chat_server):
    # A reply that is not the JSON the prompt asked for is the pipeline's to judge, not a transport error.
    server = chat_server(script=[{"content": "not json {"}])
    reply = asyncio.run(complete_once(client_for(server)))
    assert reply.text == "not json {"
    assert server.stats()["requests"] == 1


def test_429_waits_at_least_retry_after_and_is_counted(chat_server):
    server = chat_server(script=[{"status": 429, "retry_after": 1}, {"content": "ok"}])
    client = client_for(server)
    started = time.monotonic()
    reply = asyncio.run(complete_once(client))
    assert time.monotonic() - started >= 1.0
    assert reply.text == "ok" and reply.meta["attempts"] == 2
    assert client.stats.retries == 1 and client.stats.errors == {"status_429": 1}
    assert server.stats()["by_status"] == {"429": 1, "200": 1}


def test_5xx_are_retried_and_counted(chat_server):
    server = chat_server(script=[{"status": 500}, {"status": 503}, {"content": "ok"}])
    client = client_for(server)
    assert asyncio.run(complete_once(client)).text == "ok"
    assert client.stats.retries == 2 and client.stats.errors == {"status_500": 1, "status_503": 1}
    assert server.stats()["by_status"] == {"500": 1, "503": 1, "200": 1}


def test_timeout_is_retried_and_counted(chat_server):
    server = chat_server(script=[{"delay": 5}, {"content": "ok"}])
    client = client_for(server, timeout=0.5)
    started = time.monotonic()
    reply = asyncio.run(complete_once(client))
    assert reply.text == "ok"
    assert time.monotonic() - started < 4, "the client must give up on the slow try, not wait it out"
    assert client.stats.errors == {"timeout": 1} and client.stats.retries == 1
    assert server.stats()["requests"] == 2


def test_persistent_failure_raises_after_bounded_attempts(chat_server):
    server = chat_server(fail_every=1, fail_status=500)
    client = client_for(server, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    with pytest.raises(LLMError, match="after 3 attempts; last: status_500"):
        asyncio.run(complete_once(client))
    assert server.stats()["requests"] == 3
    assert (
        client.stats.failed == 1 and client.stats.requests == 0 and client.stats.errors == {"status_500": 3}
    )


def test_other_4xx_is_not_retried(chat_server):
    server = chat_server(script=[{"status": 400}, {"content": "never reached"}])
    client = client_for(server)
    with pytest.raises(LLMError, match="answered 400"):
        asyncio.run(complete_once(client))
    assert server.stats()["requests"] == 1 and client.stats.retries == 0


def test_fault_rule_every_nth_request(chat_server):
    server = chat_server(fail_every=2, fail_status=429, fail_retry_after=0.2)
    client = client_for(server)

    async def three():
        try:
            return [await client.complete(USER) for _ in range(3)]
        finally:
            await client.aclose()

    replies = asyncio.run(three())
    assert [r.text for r in replies] == ["echo: write one instruction"] * 3
    # Requests 2 and 4 fail; each is retried once.
    assert server.stats()["by_status"] == {"200": 3, "429": 2}
    assert client.stats.errors == {"status_429": 2}


def test_concurrency_limit_is_respected(chat_server):
    server = chat_server(latency=0.2)
    client = client_for(server, concurrency=4)
    seen_in_flight: list[int] = []

    async def many():
        async def one(i: int):
            reply = await client.complete([{"role": "user", "content": f"q{i}"}])
            seen_in_flight.append(client.stats.in_flight)
            return reply

        try:
            return await asyncio.gather(*(one(i) for i in range(16)))
        finally:
            await client.aclose()

    replies = asyncio.run(many())
    assert sorted(r.text for r in replies) == sorted(f"echo: q{i}" for i in range(16))
    # Exactly the limit: never more, and the limit was actually reached (requests did overlap).
    assert server.stats()["max_in_flight"] == 4
    assert max(seen_in_flight) <= 4 and client.stats.in_flight == 0


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    client = OpenAIChatClient(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    with pytest.raises(LLMError, match="connection"):
        asyncio.run(complete_once(client))
    assert client.stats.errors == {"connection": 2}


def test_non_completion_body_is_retried_and_env_configures_client(monkeypatch):
    bodies = iter([httpx.Response(200, text="<html>proxy error</html>"), None])
    seen_headers = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_headers.append(request.headers.get("authorization"))
        assert str(request.url) == "http://llm.example/v1/chat/completions"
        return next(bodies) or httpx.Response(
            200, json={"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}]}
        )

    monkeypatch.setenv("INFIR_LLM_BASE_URL", "http://llm.example/v1/")
    monkeypatch.setenv("INFIR_LLM_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.delenv("INFIR_LLM_API_KEY", raising=False)
    client = OpenAIChatClient(retry=FAST_RETRY, transport=httpx.MockTransport(handler))
    reply = asyncio.run(complete_once(client))
    assert reply.text == "fine" and reply.model == "gpt-4o-mini" and reply.prompt_tokens == 0
    assert client.stats.errors == {"bad_response": 1}
    assert seen_headers == ["Bearer sk-env", "Bearer sk-env"]


def test_model_is_required(monkeypatch):
    monkeypatch.delenv("INFIR_LLM_MODEL", raising=False)
    with pytest.raises(ValueError, match="INFIR_LLM_MODEL"):
        OpenAIChatClient(base_url="http://127.0.0.1:1/v1")


def test_retry_after_forms():
    assert parse_retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))
    assert 8 <= parse_retry_after(httpx.Headers({"retry-after": in_ten})) <= 10
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


def test_backoff_is_full_jitter_and_capped():
    import random

    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    rng = random.Random(0)
    waits = [policy.backoff(n, rng) for n in range(8) for _ in range(50)]
    assert min(waits) >= 0 and max(waits) <= 4.0
    assert max(policy.backoff(0, rng) for _ in range(50)) <= 1.0


def test_cost_estimate_uses_known_prices_or_arguments():
    assert known_prices("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert known_prices("openai/gpt-4o") == (2.50, 10.00)
    assert known_prices("llama3.1:8b") is None
    client = OpenAIChatClient(
        model="my-vllm-model", base_url="http://x/v1", price_in_per_1m=1.0, price_out_per_1m=2.0
    )
    client.stats.prompt_tokens, client.stats.completion_tokens = 1_000_000, 500_000
    assert client.stats.estimated_cost_usd == pytest.approx(2.0)
    asyncio.run(client.aclose())


def test_make_client_backends():
    client = make_client("openai", model="m", base_url="http://127.0.0.1:1/v1", concurrency=3, timeout=5)
    assert isinstance(client, OpenAIChatClient) and client.concurrency == 3 and client.timeout == 5
    asyncio.run(client.aclose())
    with pytest.raises(ValueError, match="unknown LLM backend 'batch'"):
        make_client("batch")
    with pytest.raises(ValueError, match="no base_url"):
        make_client("local", base_url="http://x/v1")


def test_responder_answers_from_the_request_and_can_inject_faults(chat_server, tmp_path):
    responder = tmp_path / "stage_responder.py"
    responder.write_text(
        "calls = {'n': 0}\n"
        "async def respond(request):\n"
        "    calls['n'] += 1\n"
        "    if calls['n'] == 1:\n"
        "        return {'status': 503}\n"
        "    text = request['messages'][-1]['content']\n"
        "    return {'content': text.upper(), 'finish_reason': 'length'}\n",
        encoding="utf-8",
    )
    server = chat_server(responder=f"{responder}:respond")
    client = client_for(server)
    reply = asyncio.run(complete_once(client))
    assert reply.text == "WRITE ONE INSTRUCTION" and reply.meta["finish_reason"] == "length"
    assert server.stats()["by_status"] == {"503": 1, "200": 1} and client.stats.errors == {"status_503": 1}
