"""CI proof that bench/quality.py still runs: the quick path on a tiny slice of the real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quality_quick_path_on_a_tiny_slice(shared_data, tmp_path):
    out = tmp_path / "quality.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "quality.py"),
        "--quick",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--train-rows",
        "8",
        "--benchmarks",
        "infir-msmarco-followir",
        "scifact",
        "--scifact-queries",
        "5",
        "--scifact-distractors",
        "10",
        "--shared",
        str(shared_data),
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    subprocess.run(command, check=True, cwd=ROOT, timeout=1200)

    results = json.loads(out.read_text())
    models = [row["model"] for row in results["rows"]]
    assert models == [
        "base (MiniLM)",
        "BM25",
        "multi:P,I",
        "multi:P,I no-instr",
        "MNRL (sentence-transformers)",
    ]
    in_domain = {row["model"]: row["scores"]["infir-msmarco-followir"] for row in results["rows"]}
    assert all(isinstance(s["p_mrr"], float) for s in in_domain.values())
    comparison = in_domain["multi:P,I"]["vs_no_instructions"]["p_mrr"]
    assert 0.0 < comparison["p_value"] <= 1.0 and comparison["n_queries"] == 145
    assert in_domain["multi:P,I"]["vs_peer"]["p_mrr"]["n_queries"] == 145
    assert all(row["training"]["steps"] == 2 for row in results["rows"][2:])
    assert out.with_suffix(".png").stat().st_size > 0
    assert "| model |" in results["table_markdown"]
