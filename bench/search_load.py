"""Search service under load, and exact vs approximate (HNSW) faiss search, on >= 20,000 passages.

1. Corpus (real text from ../shared/data, cached under bench/data/build/search_load/):
   MS MARCO sample passages (1,743), the InF-IR rows' generated hard negatives HN1/HN2 (1,920),
   and SciFact abstracts chunked into single-sentence passages until the total reaches
   --passages (default 20,000). Sentences, not whole abstracts, keep the encode affordable on
   2 shared cores (encoding cost grows with tokens, and every passage is real text).
2. Index: `infir.search.build_index` (packaged MiniLM, flat exact inner product), reused from the
   cache when the corpus is unchanged; the encode time is measured when it is built.
3. Load: `infir serve` started as a real process on a free 127.0.0.1 port; --requests requests
   (default 2,000) from --clients concurrent httpx clients (default 16): throughput, p50/p99
   latency, errors. Run twice, same process, same queries: micro-batching on (--max-batch 32)
   against the named peer, micro-batching off (--max-batch 1: one query per encode, serialised).
4. ANN: the flat index's vectors into an HNSW index (`create_faiss_index("hnsw")`, the options
   `infir index --index hnsw` uses); recall@10 against exact search and speed-up, on the same
   query vectors, one query at a time and as one batch.

    .venv/bin/python bench/search_load.py [--requests 2000] [--clients 16] [--passages 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / "data" / "build" / "search_load"
RESULT = ROOT / "bench" / "results" / "search_load.json"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def _jsonl(path: Path) -> list[dict]:
    from infir.data.io import iter_jsonl

    return [row for _, row in iter_jsonl(path)]


def infir_rows() -> list[dict]:
    return [
        row
        for split in ("train", "test", "rejected")
        for row in _jsonl(SHARED / "infir-msmarco" / f"{split}.jsonl")
    ]


def assemble_corpus(target: int) -> tuple[list[dict], dict[str, int]]:
    rows: list[dict] = []
    for doc in _jsonl(SHARED / "msmarco-sample" / "corpus.jsonl"):
        rows.append({"_id": f"msmarco:{doc['_id']}", "title": "", "text": doc["text"]})
    msmarco = len(rows)
    for i, row in enumerate(infir_rows()):
        for field in ("hard_negative_document_1", "hard_negative_document_2"):
            rows.append({"_id": f"infir:{i}:{field[-1]}", "title": "", "text": row[field]})
    negatives = len(rows) - msmarco
    for doc in _jsonl(SHARED / "scifact" / "corpus.jsonl"):
        if len(rows) >= target:
            break
        sentences = [s for s in SENTENCE_END.split(doc["text"].strip()) if s]
        for j, sentence in enumerate(sentences):
            rows.append({"_id": f"scifact:{doc['_id']}:{j}", "title": doc["title"], "text": sentence})
    counts = {
        "msmarco_sample_passages": msmarco,
        "infir_hard_negatives": negatives,
        "scifact_sentences": len(rows) - msmarco - negatives,
    }
    return rows, counts


def load_queries() -> list[tuple[str, str | None]]:
    """InF-IR (Q+, I+) pairs with their instruction, then SciFact claims without one."""
    pairs: list[tuple[str, str | None]] = [
        (r["query_positive"], r["instruction_positive"]) for r in infir_rows()
    ]
    pairs += [(q["text"], None) for q in _jsonl(SHARED / "scifact" / "queries.jsonl")]
    return pairs


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def build_or_reuse(passages: int) -> dict:
    from infir.data.io import write_json_atomic, write_jsonl_atomic
    from infir.search import build_index, read_manifest
    from infir.search.corpus import corpus_fingerprint, read_search_corpus

    rows, counts = assemble_corpus(passages)
    corpus_path = CACHE / "corpus.jsonl"
    if not corpus_path.exists() or len(read_search_corpus(corpus_path)) != len(rows):
        write_jsonl_atomic(corpus_path, rows)
    index_dir, report_path = CACHE / "index", CACHE / "build_report.json"
    fingerprint = corpus_fingerprint(read_search_corpus(corpus_path))
    try:
        reusable = read_manifest(index_dir)["build"]["corpus_sha256"] == fingerprint and report_path.exists()
    except ValueError:  # InvalidIndexError: absent, unfinished (resumed below) or damaged
        reusable = False
    if not reusable:
        load_before = os.getloadavg()
        report = build_index(
            "default",
            corpus_path,
            index_dir,
            shard_size=2048,
            overwrite=(index_dir / "manifest.json").exists(),
        )
        write_json_atomic(
            report_path,
            {
                "passages": report.count,
                "shards_encoded": report.shards_encoded,
                "shards_reused_from_a_killed_run": report.shards_reused,
                "encode_seconds": round(report.encode_seconds, 1),
                "passages_per_second": round(report.count / report.encode_seconds, 1)
                if not report.shards_reused
                else None,
                "total_build_seconds": round(report.total_seconds, 1),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    build = json.loads(report_path.read_text(encoding="utf-8"))
    return {"corpus": counts, "passages": len(rows), "build": build, "reused_cached_index": reusable}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_load(base: str, queries: list[tuple[str, str | None]], requests: int, clients: int) -> dict:
    import httpx

    latencies: list[float] = []
    server_ms: list[float] = []
    errors: list[str] = []
    next_request = iter(range(requests))

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for i in next_request:
                query, instruction = queries[i % len(queries)]
                body = {"query": query, "k": 10, **({"instruction": instruction} if instruction else {})}
                started = time.perf_counter()
                try:
                    response = await client.post("/search", json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or len(response.json()["hits"]) != 10:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                else:
                    server_ms.append(response.json()["took_ms"])

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": requests,
        "clients": clients,
        "wall_seconds": round(wall, 2),
        "throughput_rps": round(requests / wall, 1),
        "latency_ms_p50": round(float(np.percentile(ms, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(ms, 99)), 1),
        "latency_ms_max": round(float(ms.max()), 1),
        "server_took_ms_p50": round(float(np.percentile(server_ms, 50)), 1) if server_ms else None,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def serve_and_load(max_batch: int, queries: list, requests: int, clients: int) -> dict:
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (CACHE / f"serve-max-batch-{max_batch}.log").open("w")
    command = [
        sys.executable,
        "-c",
        "from infir.cli import main; main()",
        "serve",
        "--index",
        str(CACHE / "index"),
    ]
    command += ["--port", str(port), "--max-batch", str(max_batch)]
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"infir serve exited with {process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("infir serve did not become healthy within 300 s")
            time.sleep(0.5)
        asyncio.run(run_load(base, queries, 64, clients))  # warm-up, not reported
        return asyncio.run(run_load(base, queries, requests, clients))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def compare_ann(queries: list[tuple[str, str | None]]) -> dict:
    import faiss

    from infir.embed import encode_queries
    from infir.search import FaissOptions, Index, create_faiss_index

    with Index.open(CACHE / "index") as index:
        vectors = index.faiss_index.reconstruct_n(0, index.count)
        query_vectors = encode_queries(
            index.model, [q for q, _ in queries], [i for _, i in queries], text_format=index.text_format
        )
        k = 10
        options = FaissOptions()
        started = time.perf_counter()
        hnsw = create_faiss_index("hnsw", index.dimension, index.count, options)
        hnsw.add(vectors)
        hnsw_build_seconds = time.perf_counter() - started

        threads = faiss.omp_get_max_threads()

        def timed(search_index: faiss.Index, one_at_a_time: bool) -> tuple[np.ndarray, float]:
            # One query at a time runs on one OpenMP thread: on a shared, oversubscribed machine
            # faiss's threads spin-wait on each tiny search and that, not the index, dominates.
            faiss.omp_set_num_threads(1 if one_at_a_time else threads)
            started = time.perf_counter()
            if one_at_a_time:
                rows = np.vstack(
                    [search_index.search(query_vectors[i : i + 1], k)[1] for i in range(len(query_vectors))]
                )
            else:
                rows = search_index.search(query_vectors, k)[1]
            elapsed = time.perf_counter() - started
            faiss.omp_set_num_threads(threads)
            return rows, elapsed

        exact_rows, exact_single = timed(index.faiss_index, True)
        _, exact_batch = timed(index.faiss_index, False)
        result = {
            "vectors": index.count,
            "queries": len(query_vectors),
            "k": k,
            "hnsw": {"M": options.hnsw_m, "efConstruction": options.hnsw_ef_construction},
            "hnsw_build_seconds": round(hnsw_build_seconds, 2),
            "faiss_threads": {"one_at_a_time": 1, "batch": threads},
            "exact_ms_per_query_one_at_a_time": round(exact_single / len(query_vectors) * 1000, 3),
            "exact_batch_seconds": round(exact_batch, 4),
            "hnsw_by_ef_search": {},
        }
        for ef_search in (32, 64, options.hnsw_ef_search, 256):
            hnsw.hnsw.efSearch = ef_search
            rows, single = timed(hnsw, True)
            _, batch = timed(hnsw, False)
            recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact_rows, rows, strict=True)])
            result["hnsw_by_ef_search"][str(ef_search)] = {
                "recall_at_10": round(float(recall), 4),
                "ms_per_query_one_at_a_time": round(single / len(query_vectors) * 1000, 3),
                "speedup_one_at_a_time": round(exact_single / single, 2),
                "batch_seconds": round(batch, 4),
                "speedup_batch": round(exact_batch / batch, 2),
            }
    return result


def main() -> None:
    global CACHE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the corpus and index are kept")
    parser.add_argument("--result", type=Path, default=RESULT)
    args = parser.parse_args()
    CACHE = args.cache
    sys.path.insert(0, str(ROOT / "src"))
    started = time.perf_counter()
    info = machine()

    print(f"corpus + index under {CACHE} ...", flush=True)
    corpus = build_or_reuse(args.passages)
    print(json.dumps(corpus, indent=2), flush=True)

    queries = load_queries()
    load = {}
    for name, max_batch in (("micro_batched", 32), ("serialised_peer", 1)):
        print(
            f"load: {args.requests} requests, {args.clients} clients, --max-batch {max_batch} ...", flush=True
        )
        load[name] = {
            "max_batch": max_batch,
            **serve_and_load(max_batch, queries, args.requests, args.clients),
        }
        print(json.dumps(load[name]), flush=True)
    load["throughput_ratio_micro_batched_vs_serialised"] = round(
        load["micro_batched"]["throughput_rps"] / load["serialised_peer"]["throughput_rps"], 2
    )
    print(
        f"throughput micro-batched / serialised peer: {load['throughput_ratio_micro_batched_vs_serialised']}x"
    )

    print("exact (flat) vs HNSW on the same query vectors ...", flush=True)
    ann = compare_ann(queries)
    print(json.dumps(ann, indent=2), flush=True)

    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "search_load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "model": "all-MiniLM-L6-v2 (packaged default)",
        "index": corpus,
        "queries": {"distinct": len(queries), "with_instruction": sum(1 for _, i in queries if i)},
        "load": load,
        "exact_vs_hnsw": ann,
        "total_seconds": round(time.perf_counter() - started, 1),
        "command": "python bench/search_load.py " + " ".join(sys.argv[1:]),
    }
    from infir.data.io import write_json_atomic

    write_json_atomic(args.result, result)
    print(f"wrote {args.result} ({result['total_seconds']} s)")


if __name__ == "__main__":
    main()
