"""The bench/data builders produce valid FollowIR-layout sets from the shared real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infir.data import iter_jsonl, load_records
from infir.data.beir import read_qrels
from infir.data.followir import read_followir
from infir.evaluate.metrics import changed_documents

BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"


def run_builder(script: str, *args: str | Path) -> None:
    command = [sys.executable, str(BENCH_DATA / script), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_infir_msmarco_followir(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "infir-msmarco" / "test.jsonl"
    out = tmp_path / "infir"
    run_builder("make_infir_msmarco_followir.py", "--source", source, "--out", out)

    rows, _ = load_records(source)
    assert len(rows) == 145  # the held-out split's size per its README
    benchmark = read_followir(out)
    assert benchmark.warnings == []
    assert len(benchmark.queries) == len(rows)
    passages = {
        t for r in rows for t in (r.document_positive, r.hard_negative_document_1, r.hard_negative_document_2)
    }
    assert {d.text for d in benchmark.corpus.values()} == passages
    assert len(benchmark.corpus) == len(passages)
    assert (out / "top_ranked.jsonl").exists() is False  # candidates = all passages

    by_query = {r.extra["source_query_id"]: r for r in rows}
    for qid, text in benchmark.queries.items():
        row = by_query[qid]
        assert text == row.query_positive
        assert benchmark.instructions_og[qid] == row.instruction_positive
        assert benchmark.instructions_changed[qid] == row.instruction_negative
        judged_by_text = {benchmark.corpus[d].text: d for d in benchmark.qrels_og[qid]}
        p_id, hn1_id = judged_by_text[row.document_positive], judged_by_text[row.hard_negative_document_1]
        assert benchmark.qrels_og[qid] == {p_id: 1, hn1_id: 0}
        assert benchmark.qrels_changed[qid] == {hn1_id: 1, p_id: 0}
    changed = changed_documents(benchmark.qrels_og, benchmark.qrels_changed)
    assert sum(len(v) for v in changed.values()) == len(rows)

    info = json.loads((out / "build_info.json").read_text())
    assert info["counts"]["documents"] == len(passages)


def test_infir_msmarco_followir_with_distractors(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "infir-distractors"
    extra = shared_data / "msmarco-sample" / "corpus.jsonl"
    source = shared_data / "infir-msmarco" / "test.jsonl"
    run_builder("make_infir_msmarco_followir.py", "--source", source, "--out", out, "--extra-corpus", extra)
    benchmark = read_followir(out)
    extra_texts = {doc["text"] for _, doc in iter_jsonl(extra)}
    texts = {d.text for d in benchmark.corpus.values()}
    assert extra_texts <= texts
    # Every P+ keeps MS MARCO's own text, so it merges with its copy in the sample.
    rows, _ = load_records(source)
    assert {r.document_positive for r in rows} <= extra_texts
    assert len(benchmark.corpus) == len(
        extra_texts
        | {
            t
            for r in rows
            for t in (r.document_positive, r.hard_negative_document_1, r.hard_negative_document_2)
        }
    )


@pytest.mark.parametrize("strict_grade", [3, 4])
def test_cranfield_graded_followir(shared_data: Path, tmp_path: Path, strict_grade: int) -> None:
    source = shared_data / "cranfield"
    out = tmp_path / "cranfield"
    run_builder(
        "make_cranfield_graded_followir.py",
        "--source",
        source,
        "--out",
        out,
        "--strict-grade",
        str(strict_grade),
    )
    benchmark = read_followir(out)
    assert benchmark.warnings == []
    assert len(benchmark.corpus) == 1400
    grades = read_qrels(source / "qrels" / "test.tsv")
    expected_queries = {
        qid
        for qid, judged in grades.items()
        if any(g >= strict_grade for g in judged.values())
        and any(0 < g < strict_grade for g in judged.values())
    }
    assert set(benchmark.queries) == expected_queries
    assert len(expected_queries) == {3: 204, 4: 215}[strict_grade]
    changed = changed_documents(benchmark.qrels_og, benchmark.qrels_changed)
    assert set(changed) == expected_queries
    for qid, docs in changed.items():
        assert all(0 < grades[qid][d] < strict_grade for d in docs)
        assert sum(g >= strict_grade for g in grades[qid].values()) == sum(
            r > 0 for r in benchmark.qrels_changed[qid].values()
        )
    assert len({benchmark.instructions_changed[q] for q in benchmark.queries}) == 1
