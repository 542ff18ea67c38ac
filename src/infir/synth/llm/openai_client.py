"""OpenAI-compatible chat completions over HTTP (OpenAI, vLLM, Ollama, llama.cpp server, ...).

Plain httpx rather than the `openai` SDK so the retry policy is ours, visible and testable: which
failures are retried, how long we wait, and what is counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from dataclasses import dataclass

import httpx

from infir.synth.llm.base import LLMError, Message, Reply
from infir.synth.llm.usage import UsageStats, known_prices

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded.

    Retried: timeouts, connection errors, 429 and 5xx, and a 200 whose body is not a completion.
    Not retried: any other 4xx (a bad request stays bad). A 429/503 ``Retry-After`` (or OpenAI's
    ``retry-after-ms``) is a floor on the wait, capped at `max_retry_after`.

    Args:
        max_attempts: tries per request, the first included.
        base_delay: backoff scale in seconds; retry n waits uniform(0, min(max_delay, base_delay * 2**n)).
        max_delay: cap on one backoff wait.
        max_retry_after: cap on a server-requested wait, so a bogus header cannot stall a job for hours.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, retry_index: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry_index))


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, ``Retry-After`` seconds or HTTP date."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _RetryableError(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class OpenAIChatClient:
    """Async client for ``POST {base_url}/chat/completions`` with a concurrency limit and retries.

    Args:
        model: model name sent with each request (env ``INFIR_LLM_MODEL`` when None).
        base_url: API root including the version, e.g. ``http://localhost:8000/v1`` for vLLM or
            ``http://localhost:11434/v1`` for Ollama (env ``INFIR_LLM_BASE_URL``, then
            ``OPENAI_BASE_URL``, then the OpenAI API).
        api_key: bearer token (env ``INFIR_LLM_API_KEY``, then ``OPENAI_API_KEY``); local servers need none.
        concurrency: most requests in flight at once (including their retry waits).
        timeout: seconds for one HTTP try before it counts as a timeout and is retried.
        retry: the `RetryPolicy`.
        price_in_per_1m, price_out_per_1m: USD per 1M prompt/completion tokens for the cost
            estimate; when None, list prices of well-known OpenAI models are used (an estimate).
        seed: seeds the backoff jitter (reproducible waits in tests); None draws from the OS.
        transport: an httpx transport, for tests that do not want a socket.

    Each `complete` call takes the request parameters of the chat-completions API
    (``temperature``, ``max_tokens``, ``seed``, ``response_format={"type": "json_object"}``, ...)
    and passes them through unchanged; ``timeout`` overrides the client's for that call and
    ``model`` the model.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        price_in_per_1m: float | None = None,
        price_out_per_1m: float | None = None,
        seed: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        model = model or os.environ.get("INFIR_LLM_MODEL")
        if not model:
            raise ValueError("no model: pass model=... (--model) or set INFIR_LLM_MODEL")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.base_url = (
            base_url
            or os.environ.get("INFIR_LLM_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/")
        api_key = api_key or os.environ.get("INFIR_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        if price_in_per_1m is None and price_out_per_1m is None:
            price_in_per_1m, price_out_per_1m = known_prices(model) or (None, None)
        self.stats = UsageStats(price_in_per_1m=price_in_per_1m, price_out_per_1m=price_out_per_1m)
        self._rng = random.Random(seed)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        # One TLS context for all sessions: building one per session costs ~80 ms each.
        self._ssl_context = httpx.create_ssl_context()
        # One single-connection session per concurrency slot, made on first need and reused.
        # Why not one pool of `concurrency` connections: httpcore rescans every pooled connection
        # (a poll syscall each) on every request event, which at 32 connections cost more CPU than
        # the requests themselves and capped throughput well below the concurrency (measured).
        self._idle_sessions: list[httpx.AsyncClient] = []
        self._sessions: list[httpx.AsyncClient] = []

    async def complete(self, messages: list[Message], **params) -> Reply:
        """One chat completion, retried per the policy; raises `LLMError` when it fails for good."""
        timeout = params.pop("timeout", self.timeout)
        body = {"model": params.pop("model", self.model), "messages": messages, **params}
        async with self._semaphore:
            # No await between checking and taking: the event loop cannot hand a session out twice.
            session = self._idle_sessions.pop() if self._idle_sessions else self._new_session()
            self.stats.in_flight += 1
            try:
                return await self._complete_with_retries(session, body, timeout)
            finally:
                self.stats.in_flight -= 1
                self._idle_sessions.append(session)

    def _new_session(self) -> httpx.AsyncClient:
        session = httpx.AsyncClient(
            headers=self._headers,
            transport=self._transport,
            verify=self._ssl_context,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self._sessions.append(session)
        return session

    async def _complete_with_retries(self, session: httpx.AsyncClient, body: dict, timeout: float) -> Reply:
        last_error = ""
        for attempt in range(self.retry.max_attempts):
            if attempt:
                self.stats.retries += 1
            self.stats.attempts += 1
            started = time.monotonic()
            try:
                reply = await self._try_once(session, body, timeout)
            except _RetryableError as err:
                self.stats.errors[err.kind] += 1
                last_error = f"{err.kind}: {err}"
                if attempt + 1 == self.retry.max_attempts:
                    break
                wait = self.retry.backoff(attempt, self._rng)
                if err.retry_after is not None:
                    wait = max(wait, min(err.retry_after, self.retry.max_retry_after))
                await asyncio.sleep(wait)
                continue
            except LLMError:
                self.stats.failed += 1
                raise
            self.stats.requests += 1
            self.stats.prompt_tokens += reply.prompt_tokens
            self.stats.completion_tokens += reply.completion_tokens
            reply.meta.update(attempts=attempt + 1, latency_s=round(time.monotonic() - started, 4))
            return reply
        self.stats.failed += 1
        url = f"{self.base_url}/chat/completions"
        raise LLMError(f"{url} failed after {self.retry.max_attempts} attempts; last: {last_error}")

    async def _try_once(self, session: httpx.AsyncClient, body: dict, timeout: float) -> Reply:
        url = f"{self.base_url}/chat/completions"
        try:
            response = await session.post(url, json=body, timeout=timeout)
        except httpx.TimeoutException as err:
            raise _RetryableError("timeout", f"no answer within {timeout}s ({type(err).__name__})") from err
        except httpx.TransportError as err:
            raise _RetryableError("connection", f"{type(err).__name__}: {err}") from err
        status = response.status_code
        if status == 429 or status >= 500:
            raise _RetryableError(
                f"status_{status}", _error_text(response), parse_retry_after(response.headers)
            )
        if status >= 400:
            self.stats.errors[f"status_{status}"] += 1
            raise LLMError(f"{url} answered {status}: {_error_text(response)}")
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise _RetryableError("bad_response", f"not a chat completion: {response.text[:200]!r}") from err
        usage = payload.get("usage") or {}
        return Reply(
            text=text,
            model=payload.get("model") or body["model"],
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            meta={"finish_reason": choice.get("finish_reason"), "id": payload.get("id")},
        )

    async def aclose(self) -> None:
        """Close every connection; the client is not usable afterwards."""
        await asyncio.gather(*(session.aclose() for session in self._sessions))
        self._sessions.clear()
        self._idle_sessions.clear()


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
