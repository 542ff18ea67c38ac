import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infir.cli import app
from infir.data.trec import read_run

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "followir_mini"


@pytest.mark.slow
def test_eval_default_and_bm25_end_to_end(tmp_path, encode_calls):
    runner = CliRunner()
    args = ["eval", "--model", "default", "--model", "bm25", "--benchmark", str(MINI)]
    args += ["--json", str(tmp_path / "report.json"), "--runs", str(tmp_path / "runs")]
    args += [
        "--plot",
        str(tmp_path / "chart.png"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--batch-size",
        "16",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "p-MRR" in first.output and "default" in first.output and "bm25" in first.output
    assert encode_calls == [30]

    report = json.loads((tmp_path / "report.json").read_text())
    for model in ("default", "bm25"):
        entry = report["results"]["followir_mini"][model]
        assert -100.0 <= entry["p_mrr"] <= 100.0
        assert set(entry["p_mrr_per_query"]) == {"q1", "q2", "q3", "q4", "q5", "q6"}
        assert {"nDCG@10", "MAP@1000"} <= set(entry["og"]) and set(entry["og"]) == set(entry["changed"])
        assert set(entry["per_query"]["og"]) == set(entry["p_mrr_per_query"])
        assert entry["headline"] == "nDCG@10" and entry["headline_og"] == entry["og"]["nDCG@10"]
        og_run = read_run(tmp_path / "runs" / "followir_mini" / f"{model}.og.trec")
        assert set(og_run["q1"]) == {"d01", "d02", "d03", "d04", "d05", "d06"}  # the top_ranked candidates
    assert report["results"]["followir_mini"]["default"]["corpus_from_cache"] is False
    assert report["models"]["default"]["text_format"] == "concat"
    assert {"date", "machine", "versions"} <= set(report["metadata"])
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"

    # Second run: same model, same corpus -> the embeddings come from the cache, nothing re-encoded.
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert encode_calls == [30]
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["results"]["followir_mini"]["default"]["corpus_from_cache"] is True
    assert again["results"]["followir_mini"]["default"]["p_mrr"] == pytest.approx(
        report["results"]["followir_mini"]["default"]["p_mrr"], abs=1e-9
    )


def test_eval_bad_benchmark_is_one_clear_line(tmp_path):
    broken = tmp_path / "broken"
    (broken / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (broken / name).write_text((MINI / name).read_text())
    (broken / "qrels" / "og.tsv").write_text((MINI / "qrels" / "og.tsv").read_text())
    result = CliRunner().invoke(app, ["eval", "--model", "bm25", "--benchmark", str(broken)])
    assert result.exit_code == 2
    assert "changed.tsv: qrels file not found" in result.output.replace("\n", "")  # rich wraps long lines
    assert "Traceback" not in result.output


def test_eval_rejects_unknown_text_format():
    result = CliRunner().invoke(app, ["eval", "-m", "bm25", "-b", str(MINI), "--text-format", "sideways"])
    assert result.exit_code == 2 and "--text-format must be one of" in result.output.replace("\n", "")
