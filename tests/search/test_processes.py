"""The CLI as real processes: a build killed mid-encode resumes; `infir serve` answers over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from infir.cli import app
from infir.search import Index, InvalidIndexError, build_index
from tests.search.conftest import free_loopback_port

pytestmark = pytest.mark.slow

INFIR = [sys.executable, "-c", "from infir.cli import main; main()"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

TOPICS = ["glaciers", "violins", "bridges", "lichens", "comets", "harbors", "orchards", "satellites"]


def _write_corpus(path: Path, count: int) -> Path:
    """`count` distinct, deterministic passages of ~40 words."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        topic, other = rng.choice(TOPICS, size=2, replace=False)
        text = (
            f"Passage {i} describes how {topic} change over {rng.integers(2, 900)} years, "
            f"compares them with {other}, and lists {rng.integers(3, 40)} field observations "
            f"recorded by survey team {rng.integers(1, 99)} near station {rng.integers(100, 999)}."
        )
        lines.append(f'{{"_id": "d{i}", "title": "{topic} {i}", "text": "{text}"}}\n')
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _wait_for(predicate, timeout: float, process: subprocess.Popen | None = None, step: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited early with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def test_killed_build_resumes_without_re_encoding(minilm, tmp_path):
    documents, shard_size = 120, 4
    shards = documents // shard_size
    corpus = _write_corpus(tmp_path / "corpus.jsonl", documents)
    out = tmp_path / "index"
    command = [*INFIR, "index", "--corpus", str(corpus), "--out", str(out), "--shard-size", str(shard_size)]
    command.append("--keep-shards")  # so the resumed run's shards can be compared with the killed run's
    first_shard = out / "shards" / "shard-00000.npy"

    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(first_shard.exists, timeout=180, process=process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-*.npy")}
    assert not (out / "manifest.json").exists(), "the build finished before the kill: make the corpus larger"
    assert 1 <= len(kept) < shards
    with pytest.raises(InvalidIndexError, match="unfinished build"):
        Index.open(out, model=minilm)

    resumed = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    summary = " ".join(resumed.stdout.split())
    assert f"encoded {shards - len(kept)} shard(s), kept {len(kept)} from an earlier run" in summary
    assert {name: (out / "shards" / name).stat().st_mtime_ns for name in kept} == kept  # not re-encoded
    assert not list((out / "shards").glob(".*.tmp"))

    clean = tmp_path / "clean"
    build_index(minilm, corpus, clean, model_name="default", shard_size=shard_size, show_progress=False)
    with Index.open(out, model=minilm) as resumed_index, Index.open(clean, model=minilm) as clean_index:
        assert resumed_index.count == clean_index.count == documents
        np.testing.assert_allclose(
            resumed_index.faiss_index.reconstruct_n(0, documents),
            clean_index.faiss_index.reconstruct_n(0, documents),
            atol=1e-5,
        )
        rows = list(range(documents))
        assert resumed_index.store.get_rows(rows) == clean_index.store.get_rows(rows)


def test_serve_process_answers_over_http(fixture_index_dir):
    port = free_loopback_port()
    base = f"http://127.0.0.1:{port}"
    command = [*INFIR, "serve", "--index", str(fixture_index_dir), "--port", str(port)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(healthy, timeout=180, process=process, step=0.25)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/health").json()["index_size"] == 12
            hits = client.post(
                "/search", json={"query": "can water bears live in outer space?", "k": 2}
            ).json()["hits"]
            assert hits[0]["id"] == "planted-tardigrade" and len(hits) == 2
            batch = client.post(
                "/search/batch",
                json={
                    "queries": [
                        {"query": "python", "instruction": "about the programming language"},
                        {"query": "jazz"},
                    ]
                },
            ).json()["results"]
            assert batch[0]["hits"][0]["id"].startswith("lang-") and batch[1]["hits"][0]["id"] == "jazz"
            assert client.post("/search", json={"query": " "}).status_code == 422
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode is not None


def test_search_command_prints_a_table(fixture_index_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "search",
            "--index",
            str(fixture_index_dir),
            "--query",
            "python",
            "--instruction",
            "the snake",
            "--k",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "snake-ball" in result.output and "rank" in result.output
    missing = runner.invoke(app, ["search", "--index", str(tmp_path / "nope"), "--query", "x"])
    assert missing.exit_code == 2 and "nope: no such index directory" in " ".join(missing.output.split())
