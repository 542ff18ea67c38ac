"""A scripted OpenAI chat-completions server for tests and benchmarks: a real process on loopback.

Run it as::

    python tests/synth/chat_server.py --port 0 --port-file PORT.txt \
        [--script FILE.jsonl | --responder module:function] [--latency 0.2] \
        [--fail-every N --fail-status 500 [--fail-retry-after S]] [--model NAME]

The bound port is printed as ``PORT <n>`` on stdout and, with ``--port-file``, written (atomically)
to that file.

Where replies come from, first match wins for each request:

1. the fault rule: every N-th request (``--fail-every N``) answers ``--fail-status``;
2. ``--script``: JSONL entries consumed in arrival order; when the script runs out the server answers
   400 ``script exhausted`` (a 4xx, so a client does not retry it into a confusing failure);
3. ``--responder module:function`` (or ``path/to/file.py:function``): called with the request JSON,
   sync or async, returns a reply string or an entry dict;
4. otherwise an echo of the last user message.

An entry (script line or responder dict) is one of::

    {"content": "..."}                      a normal reply (any text, also malformed JSON)
    {"status": 429, "retry_after": 1}       an error status, with an optional Retry-After header
    {"status": 500}                         a server error
    {"delay": 30}                           sleep before answering (longer than a client timeout);
                                            with "content" it then answers that, else "(delayed)"

An entry may also set ``"finish_reason"`` (default ``stop``). ``--latency`` is added to every request.

Inspection endpoints: ``GET /health``; ``GET /_stats`` -> ``{"requests", "by_status", "in_flight",
"max_in_flight", "script_remaining"}``; ``GET /_log`` -> the request bodies received, in order;
``POST /_reset`` clears stats and log (not the script).

From Python (tests, benchmarks): ``server = start_chat_server(workdir, script=[...], latency=0.2)``
starts it as a subprocess and returns a `ChatServer` (``base_url``, ``stats()``, ``requests()``,
``reset()``, ``stop()``); the pytest fixture ``chat_server`` in ``conftest.py`` wraps it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MAX_LOGGED_REQUESTS = 10_000
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0


def load_responder(spec: str):
    """Resolve ``module:function`` or ``path/to/file.py:function`` to a callable."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise SystemExit(f"--responder must be module:function or file.py:function, got {spec!r}")
    if target.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
        if module_spec is None or module_spec.loader is None:
            raise SystemExit(f"--responder: cannot load {target}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        # Run from the repository root, `tests.synth.<module>` must import without an install.
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(target)
    return getattr(module, name)


def load_script(path: str) -> deque[dict]:
    entries: deque[dict] = deque()
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise SystemExit(f"{path}, line {line_no}: not JSON ({err})") from err
        if not isinstance(entry, dict):
            raise SystemExit(f"{path}, line {line_no}: an entry must be an object")
        entries.append(entry)
    return entries


def count_tokens(text: str) -> int:
    """Whitespace words: deterministic, so tests can assert usage totals."""
    return len(text.split())


class ChatServerState:
    """Where replies come from, and what the server saw."""

    def __init__(
        self,
        script: deque[dict] | None,
        responder,
        latency: float,
        fail_every: int,
        fail_status: int,
        fail_retry_after: float | None,
        model: str,
    ):
        self.script = script
        self.responder = responder
        self.latency = latency
        self.fail_every = fail_every
        self.fail_status = fail_status
        self.fail_retry_after = fail_retry_after
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: deque[dict] = deque(maxlen=MAX_LOGGED_REQUESTS)

    async def entry_for(self, number: int, body: dict) -> dict:
        if self.fail_every and number % self.fail_every == 0:
            return {"status": self.fail_status, "retry_after": self.fail_retry_after}
        if self.script is not None:
            if not self.script:
                return {"status": 400, "error": "chat_server: script exhausted"}
            return self.script.popleft()
        if self.responder is not None:
            answer = self.responder(body)
            if inspect.isawaitable(answer):
                answer = await answer
            return {"content": answer} if isinstance(answer, str) else dict(answer)
        user_turns = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        return {"content": f"echo: {user_turns[-1] if user_turns else ''}"}


def completion_body(state: ChatServerState, body: dict, content: str, finish_reason: str) -> dict:
    prompt_text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    prompt_tokens, completion_tokens = count_tokens(prompt_text), count_tokens(content)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or state.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def create_app(state: ChatServerState) -> FastAPI:
    app = FastAPI(title="scripted chat completions")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": state.model, "object": "model", "owned_by": "chat_server"}]}

    @app.get("/_stats")
    async def stats() -> dict:
        return {
            "requests": state.requests,
            "by_status": dict(state.by_status),
            "in_flight": state.in_flight,
            "max_in_flight": state.max_in_flight,
            "script_remaining": None if state.script is None else len(state.script),
        }

    @app.get("/_log")
    async def log() -> list[dict]:
        return list(state.log)

    @app.post("/_reset")
    async def reset() -> dict:
        state.reset()
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        state.requests += 1
        number = state.requests
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                state.by_status["400"] += 1
                return JSONResponse({"error": {"message": "request body is not JSON"}}, status_code=400)
            state.log.append(body)
            entry = await state.entry_for(number, body)
            delay = state.latency + float(entry.get("delay", 0.0))
            if delay > 0:
                await asyncio.sleep(delay)
            status = int(entry.get("status", 200))
            state.by_status[str(status)] += 1
            if status != 200:
                headers = {}
                if entry.get("retry_after") is not None:
                    headers["Retry-After"] = str(entry["retry_after"])
                message = entry.get("error", f"scripted fault {status}")
                return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)
            content = entry.get("content", "(delayed)" if "delay" in entry else "")
            finish_reason = entry.get("finish_reason", "stop")
            return JSONResponse(completion_body(state, body, content, finish_reason))
        finally:
            state.in_flight -= 1

    return app


# -- launching it from tests and benchmarks --------------------------------------------------


@dataclass
class ChatServer:
    """A running `chat_server.py` process; `base_url` is what an OpenAI client takes (ends in /v1)."""

    process: subprocess.Popen
    root_url: str

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def stats(self) -> dict:
        """Counters: ``requests``, ``by_status`` ({"200": n, ...}), ``in_flight``, ``max_in_flight``,
        ``script_remaining``."""
        return httpx.get(f"{self.root_url}/_stats", timeout=5).json()

    def requests(self) -> list[dict]:
        """The chat-completion request bodies the server received, in arrival order."""
        return httpx.get(f"{self.root_url}/_log", timeout=5).json()

    def reset(self) -> None:
        httpx.post(f"{self.root_url}/_reset", timeout=5)

    def stop(self) -> None:
        # Killed outright: it holds no state worth a graceful shutdown, and a scripted long delay
        # would otherwise hold the shutdown up (and print a cancelled-request traceback).
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_chat_server(
    workdir: Path,
    script: list[dict] | str | Path | None = None,
    responder: str | None = None,
    latency: float = 0.0,
    fail_every: int = 0,
    fail_status: int = 500,
    fail_retry_after: float | None = None,
    model: str = "chat-server-model",
) -> ChatServer:
    """Start `chat_server.py` as a subprocess and wait until it answers /health.

    Args:
        workdir: where the port file (and a script given as a list) are written.
        script: reply/fault entries (a list is written to JSONL) or the path of a JSONL script.
        responder: ``module:function`` (importable from the repo root, e.g. ``tests.synth.x:respond``)
            or ``path/to/file.py:function``.
        latency: seconds the server waits before every reply.
        fail_every, fail_status, fail_retry_after: every N-th request answers that status.
        model: the model name the server reports.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / f"chat_server_{time.monotonic_ns()}.port"
    command = [sys.executable, str(Path(__file__).resolve()), "--port", "0", "--port-file", str(port_file)]
    if isinstance(script, list):
        script_path = port_file.with_suffix(".script.jsonl")
        script_path.write_text("".join(json.dumps(entry) + "\n" for entry in script), encoding="utf-8")
        command += ["--script", str(script_path)]
    elif script is not None:
        command += ["--script", str(script)]
    if responder:
        command += ["--responder", responder]
    command += ["--latency", str(latency), "--model", model, "--exit-with-parent"]
    if fail_every:
        command += ["--fail-every", str(fail_every), "--fail-status", str(fail_status)]
        if fail_retry_after is not None:
            command += ["--fail-retry-after", str(fail_retry_after)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    server = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chat_server exited with {process.returncode} before listening: {command}")
        if server is None and port_file.exists():
            server = ChatServer(process, f"http://127.0.0.1:{int(port_file.read_text())}")
        if server is not None:
            try:
                if httpx.get(f"{server.root_url}/health", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
    raise RuntimeError(f"chat_server did not become healthy within {STARTUP_TIMEOUT_S}s: {command}")


# -- the server process ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--script", help="JSONL of reply/fault entries, consumed in order")
    source.add_argument("--responder", help="module:function or file.py:function(request_json) -> str|dict")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--fail-every", type=int, default=0, help="every N-th request answers --fail-status")
    parser.add_argument("--fail-status", type=int, default=500)
    parser.add_argument("--fail-retry-after", type=float, default=None, help="Retry-After for those faults")
    parser.add_argument("--model", default="chat-server-model", help="model name reported by the server")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when the starting process dies (no leaked servers)",
    )
    return parser.parse_args(argv)


def exit_when_orphaned(parent_pid: int) -> None:
    """Exit once the parent is gone (we get re-parented), e.g. a test run killed before teardown."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.exit_with_parent:
        threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    state = ChatServerState(
        script=load_script(args.script) if args.script else None,
        responder=load_responder(args.responder) if args.responder else None,
        latency=args.latency,
        fail_every=args.fail_every,
        fail_status=args.fail_status,
        fail_retry_after=args.fail_retry_after,
        model=args.model,
    )
    # Bind (and listen) before announcing the port, so a reader never races a free-port lookup.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections. Without it each reply (headers and body written apart)
    # stalls ~40 ms on Nagle + delayed ACK: measured 47 ms vs 0.3 ms per request on loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    if args.port_file:
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(str(port), encoding="utf-8")
        tmp.replace(args.port_file)
    print(f"PORT {port}", flush=True)
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        backlog=1024,
        timeout_keep_alive=30,
        # Ctrl-C on a server in the middle of a scripted long delay should not hang.
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
