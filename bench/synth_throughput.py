"""Client-layer synthesis throughput: chat completions per second through `OpenAIChatClient`.

Starts the scripted test server (`tests/synth/chat_server.py`) on loopback with a fixed per-request
latency (default 0.2 s, standing in for an LLM's time to answer), then sends requests through our
OpenAI-compatible client at concurrency 1, 8 and 32. Each level runs for about the same wall time
(``requests = concurrency * rounds``). The peer is the concurrency-1 run in the same process: the
speed-up of each level over it is printed and written to `bench/results/synth_throughput.json`
with the machine and date. Target: >= 20x at concurrency 32 while the server is not the bottleneck
(the server's own max-in-flight count is recorded to show it was not).

This measures the LLM client layer only (one request = one row's single call), not the full
pipeline with its several stages and validation per row.

    .venv/bin/python bench/synth_throughput.py [--latency 0.2] [--rounds 10] [--levels 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # for tests.synth.chat_server, the server this measures against

from infir.data import write_json_atomic  # noqa: E402
from infir.synth.llm import OpenAIChatClient, RetryPolicy  # noqa: E402
from tests.synth.chat_server import start_chat_server  # noqa: E402

RESULT = REPO_ROOT / "bench" / "results" / "synth_throughput.json"
# A prompt of realistic size for one synthesis stage (~1.5 KB: instructions plus a passage).
PROMPT = "Write an instruction that this passage satisfies and a similar one it does not. " * 18


async def measure_level(base_url: str, concurrency: int, n_requests: int) -> dict:
    """Send `n_requests` through one client limited to `concurrency`; rows/s over the wall time."""
    client = OpenAIChatClient(
        model="bench-model", base_url=base_url, concurrency=concurrency, retry=RetryPolicy(max_attempts=1)
    )
    messages = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": PROMPT}]
    try:
        cpu_started, started = time.process_time(), time.perf_counter()
        replies = await asyncio.gather(
            *(client.complete(messages, temperature=0.0, seed=i) for i in range(n_requests))
        )
        elapsed, client_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await client.aclose()
    assert len(replies) == n_requests and all(r.text for r in replies)
    return {
        "concurrency": concurrency,
        "requests": n_requests,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(n_requests / elapsed, 2),
        # CPU the client process spent: how close the client layer itself is to being the limit.
        "client_cpu_s": round(client_cpu, 3),
        "client_errors": dict(client.stats.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    parser.add_argument("--rounds", type=int, default=10, help="requests per level = concurrency * rounds")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    if args.levels[0] != 1:
        parser.error("the first level must be 1: it is the peer every speed-up is measured against")

    with tempfile.TemporaryDirectory() as workdir:
        server = start_chat_server(Path(workdir), latency=args.latency)
        try:
            # Warm-up: imports, connection set-up, the server's first requests.
            asyncio.run(measure_level(server.base_url, 4, 8))
            levels = []
            for concurrency in args.levels:
                server.reset()
                level = asyncio.run(measure_level(server.base_url, concurrency, concurrency * args.rounds))
                level["server_max_in_flight"] = server.stats()["max_in_flight"]
                levels.append(level)
        finally:
            server.stop()

    peer = levels[0]["rows_per_s"]
    ideal_per_slot = 1.0 / args.latency
    print(f"client-layer throughput, server latency {args.latency}s per request (peer: concurrency 1)")
    print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'rows/s':>8} {'speed-up':>9} {'of ideal':>9}")
    for level in levels:
        level["speedup_vs_concurrency_1"] = round(level["rows_per_s"] / peer, 2)
        level["fraction_of_ideal"] = round(level["rows_per_s"] / (ideal_per_slot * level["concurrency"]), 3)
        print(
            f"{level['concurrency']:>11} {level['requests']:>8} {level['seconds']:>8.2f} "
            f"{level['rows_per_s']:>8.1f} {level['speedup_vs_concurrency_1']:>8.1f}x "
            f"{level['fraction_of_ideal']:>8.0%}"
        )
    result = {
        "benchmark": "synth_throughput: LLM client layer, OpenAIChatClient -> scripted chat server",
        "unit": "rows/s = chat completions per second, one request per row",
        "peer": "the same client at concurrency 1, same process and server",
        "server_latency_s": args.latency,
        "levels": levels,
        "target": "speed-up >= 20x at concurrency 32",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json_atomic(RESULT, result)
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
