import shutil
from pathlib import Path

import pytest

from infir.data import InputError
from infir.data.followir import read_followir
from infir.data.trec import read_run
from infir.evaluate import evaluate, render_table, report_to_json, write_outputs
from infir.evaluate.metrics import changed_documents, p_mrr, standard_metrics

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "followir_mini"


@pytest.fixture
def beir_mini(tmp_path) -> Path:
    """The fixture's og side as a BEIR folder (standard retrieval, qrels/test.tsv)."""
    folder = tmp_path / "beir_mini"
    (folder / "qrels").mkdir(parents=True)
    shutil.copy(MINI / "corpus.jsonl", folder)
    shutil.copy(MINI / "queries.jsonl", folder)
    shutil.copy(MINI / "qrels" / "og.tsv", folder / "qrels" / "test.tsv")
    return folder


def test_followir_benchmark_gets_both_runs_and_p_mrr():
    report = evaluate(["bm25"], [MINI])
    result = report.results["followir_mini"]["bm25"]
    bench = read_followir(MINI)
    # Every number is the metrics module's on the runs the runner kept.
    expected = p_mrr(
        result.run_og, result.run_changed, changed_documents(bench.qrels_og, bench.qrels_changed)
    )
    assert result.p_mrr == pytest.approx(expected.p_mrr)
    assert result.p_mrr_per_query == expected.per_query and len(result.p_mrr_per_query) == 6
    assert result.metrics_og == standard_metrics(bench.qrels_og, result.run_og, report.measures)[0]
    assert (
        result.metrics_changed
        == standard_metrics(bench.qrels_changed, result.run_changed, report.measures)[0]
    )
    # FollowIR reranks the candidates, both instructions produce different rankings
    assert {q: set(d) for q, d in result.run_og.items()} == {q: set(d) for q, d in bench.top_ranked.items()}
    assert result.run_og != result.run_changed
    summary = report.benchmarks["followir_mini"]
    assert summary.follows_instructions and summary.reranks_candidates and summary.queries == 6


def test_beir_benchmark_gets_standard_metrics_only(beir_mini):
    report = evaluate(["bm25"], [beir_mini], depth=5)
    result = report.results["beir_mini"]["bm25"]
    assert result.p_mrr is None and result.metrics_changed is None and result.run_changed is None
    assert all(len(docs) == 5 for docs in result.run_og.values())
    assert 0.0 < result.metrics_og["nDCG@10"] <= 1.0
    assert not report.benchmarks["beir_mini"].follows_instructions


def test_headline_is_measured_and_overridable(tmp_path):
    robust = shutil.copytree(MINI, tmp_path / "robust04-mini")
    report = evaluate(["bm25"], [robust])
    assert report.benchmarks["robust04-mini"].headline == "MAP@1000"
    assert "MAP@1000" in report.results["robust04-mini"]["bm25"].metrics_og
    report = evaluate(["bm25"], [MINI], headline="P@3", measures=("nDCG@10",))
    assert set(report.results["followir_mini"]["bm25"].metrics_og) == {"nDCG@10", "P@3"}


def test_same_labels_are_kept_apart(tmp_path):
    report = evaluate(["bm25", "bm25"], [MINI, shutil.copytree(MINI, tmp_path / "followir_mini")])
    assert list(report.results) == ["followir_mini", "followir_mini#2"]
    assert list(report.results["followir_mini"]) == ["bm25", "bm25#2"]


def test_bad_input_fails_before_any_model(tmp_path):
    with pytest.raises(ValueError, match="no model"):
        evaluate([], [MINI])
    with pytest.raises(InputError, match="benchmark folder not found"):
        evaluate(["a-model-that-would-fail-to-load"], [tmp_path / "missing"])
    with pytest.raises(ValueError, match="unknown measure"):
        evaluate(["bm25"], [MINI], measures=("nDCG10",))


def test_outputs(tmp_path, beir_mini):
    report = evaluate(["bm25"], [MINI, beir_mini])
    written = write_outputs(report, tmp_path / "r.json", tmp_path / "runs", tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    og_file = tmp_path / "runs" / "followir_mini" / "bm25.og.trec"
    assert og_file in written and (tmp_path / "runs" / "beir_mini" / "bm25.trec") in written
    result = report.results["followir_mini"]["bm25"]
    loaded = read_run(og_file)
    assert loaded.keys() == result.run_og.keys()
    assert all(loaded[q] == pytest.approx(result.run_og[q], abs=1e-6) for q in loaded)
    data = report_to_json(report)
    entry = data["results"]["followir_mini"]["bm25"]
    assert entry["p_mrr"] == pytest.approx(result.p_mrr)
    assert entry["headline"] == "nDCG@10" and entry["headline_og"] == result.metrics_og["nDCG@10"]
    assert set(entry["og"]) == set(entry["changed"]) and entry["p_mrr_per_query"] == result.p_mrr_per_query
    assert data["results"]["beir_mini"]["bm25"]["p_mrr"] is None
    assert {"date", "machine", "versions", "measures"} <= set(data["metadata"])
    assert data["metadata"]["machine"]["cpu_count"] >= 1
    table = render_table(report)
    headers = [str(column.header) for column in table.columns]
    assert headers[0] == "model" and "followir_mini\np-MRR" in headers and "beir_mini\nnDCG@10" in headers
