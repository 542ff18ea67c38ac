"""`infir synth` and its subcommands, end to end against the real chat server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from infir.cli import app
from infir.synth.stages import CHECKS
from tests.synth.test_batch import fabricate_responses

PAIRS = Path(__file__).resolve().parents[1] / "fixtures" / "synth_pairs.jsonl"
BEIR = Path(__file__).resolve().parents[1] / "fixtures" / "synth_pairs_beir"
RESPONDER = "tests.synth.responder:respond"
runner = CliRunner()


def _synth(*args: str):
    return runner.invoke(app, ["synth", *args, "--no-progress"])


def _text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_synth_against_a_server_then_refuses_to_clobber_then_resumes(tmp_path, chat_server):
    server = chat_server(responder=RESPONDER)
    out = tmp_path / "rows.jsonl"
    options = ["--pairs", str(PAIRS), "--out", str(out), "--llm", "openai", "--base-url", server.base_url,
               "--model", "served-model", "--concurrency", "4"]  # fmt: skip
    result = _synth(*options)
    assert result.exit_code == 0, result.output
    assert "kept 7 · rejected 1 · pending 0 of 8 pairs" in _text(result)
    assert len(out.read_text().splitlines()) == 7
    stats = json.loads((tmp_path / "rows.stats.json").read_text())
    assert stats["kept"] == 7 and stats["clients"]["generator"]["requests"] == stats["requests"]

    again = _synth(*options)
    assert again.exit_code == 2 and "--resume" in _text(again)

    changed = _synth(*options, "--limit", "2")
    assert changed.exit_code == 2 and "differs in: limit" in _text(changed)

    requests_before = server.stats()["requests"]
    resumed = _synth(*options, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert server.stats()["requests"] == requests_before  # everything came from the journal


def test_synth_needs_pairs_and_out_and_reports_bad_input(tmp_path):
    missing = _synth("--out", str(tmp_path / "x.jsonl"))
    assert missing.exit_code == 2 and "--pairs and --out are required" in _text(missing)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "passage": "p"}\n{"query": "q2"}\n')
    result = _synth("--pairs", str(bad), "--out", str(tmp_path / "o.jsonl"), "--llm", "batch", "--model", "m")
    assert result.exit_code == 2 and "bad.jsonl, line 2, field 'passage': missing" in _text(result)


def test_batch_cycle_through_the_cli(tmp_path):
    out = tmp_path / "rows.jsonl"
    journal = tmp_path / "rows.journal.sqlite"
    options = ["--pairs", str(BEIR), "--out", str(out), "--llm", "batch", "--model", "fake-model"]
    result = _synth(*options)
    assert result.exit_code == 0 and "requests pending" in _text(result) and "pending 4 of 4" in _text(result)
    for round_number in range(1, 10):
        requests_file, responses_file = (
            tmp_path / f"req{round_number}.jsonl",
            tmp_path / f"resp{round_number}.jsonl",
        )
        exported = runner.invoke(
            app, ["synth", "export-batch", "--journal", str(journal), "--out", str(requests_file)]
        )
        assert exported.exit_code == 0, exported.output
        fabricate_responses(requests_file, responses_file)
        imported = runner.invoke(
            app, ["synth", "import-batch", "--journal", str(journal), "--responses", str(responses_file)]
        )
        assert imported.exit_code == 0 and '"failed": 0' in _text(imported)
        result = _synth(*options, "--resume")
        assert result.exit_code == 0, result.output
        if "pending 0" in _text(result):
            break
    assert round_number == 4 and "kept 4 · rejected 0" in _text(result)
    nothing = runner.invoke(
        app, ["synth", "export-batch", "--journal", str(journal), "--out", str(tmp_path / "n")]
    )
    assert "nothing pending" in _text(nothing)


def test_review_export_and_import_through_the_cli(tmp_path):
    out = tmp_path / "rows.jsonl"
    journal = tmp_path / "rows.journal.sqlite"
    options = ["--pairs", str(BEIR), "--out", str(out), "--llm", "batch", "--model", "fake-model"]
    for round_number in range(4):
        assert _synth(*options, *(["--resume"] if round_number else [])).exit_code == 0
        runner.invoke(
            app, ["synth", "export-batch", "--journal", str(journal), "--out", str(tmp_path / "r.jsonl")]
        )
        fabricate_responses(tmp_path / "r.jsonl", tmp_path / "s.jsonl")
        runner.invoke(
            app,
            ["synth", "import-batch", "--journal", str(journal), "--responses", str(tmp_path / "s.jsonl")],
        )
    assert _synth(*options, "--resume").exit_code == 0
    review = tmp_path / "review.csv"
    exported = runner.invoke(
        app, ["synth", "review-export", "--rows", str(out), "--out", str(review), "--n", "3"]
    )
    assert (
        exported.exit_code == 0
        and "wrote 3 rows" in _text(exported)
        and "Does P+ satisfy (Q+, I-)?" in _text(exported)
    )
    with review.open() as handle:
        entries = list(csv.DictReader(handle))
    for entry in entries:  # a human who agrees with a good row on everything
        for check in CHECKS:
            entry[f"human_{check.name}"] = "yes" if check.expected else "no"
    with review.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)
    report_path = tmp_path / "agreement.json"
    imported = runner.invoke(app, ["synth", "review-import", "--review", str(review), "--rows", str(out),
                                   "--out", str(report_path)])  # fmt: skip
    assert imported.exit_code == 0, imported.output
    report = json.loads(report_path.read_text())
    expected_yes = 3 * sum(check.expected for check in CHECKS)
    rated = 3 * len(CHECKS)
    assert report["overall"] == {"rated": rated, "agree": rated, "agreement": 1.0, "kappa": 1.0,
                                 "human_yes": expected_yes, "judge_yes": expected_yes}  # fmt: skip
    assert report["keep_decision"]["agreement"] == 1.0
