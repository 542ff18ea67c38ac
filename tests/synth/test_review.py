"""Human review: a blind seeded sample out, filled verdicts in, agreement with the judge reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from infir.data.errors import InputError
from infir.synth import export_review, import_review, read_pairs, synthesize
from infir.synth.review import HUMAN_PREFIX, format_review_report
from infir.synth.stages import CHECKS
from tests.synth.responder import ResponderClient

PAIRS_JSONL = Path(__file__).resolve().parents[1] / "fixtures" / "synth_pairs.jsonl"


@pytest.fixture
def synth_output(tmp_path) -> tuple[Path, Path]:
    out = tmp_path / "rows.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), ResponderClient(), out)
    return out, tmp_path / "rows.rejected.jsonl"


def _judged(paths) -> dict[str, dict]:
    return {
        row["synth_id"]: row["verdicts"] for p in paths for row in map(json.loads, p.read_text().splitlines())
    }


def test_export_is_a_blind_seeded_sample(tmp_path, synth_output):
    rows, rejected = synth_output
    assert export_review(rows, tmp_path / "a.csv", n=4, seed=1) == 4
    export_review(rows, tmp_path / "b.csv", n=4, seed=1)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    with (tmp_path / "a.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and all(row[HUMAN_PREFIX + c.name] == "" for row in table for c in CHECKS)
    assert not any("verdict" in column or "reason" in column for column in table[0])  # no judge answers shown
    assert export_review(rows, tmp_path / "all.jsonl", n=100, rejected_path=rejected) == 8


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_import_reports_agreement_per_check_and_on_keep(tmp_path, synth_output, suffix):
    rows, rejected = synth_output
    review = tmp_path / f"review{suffix}"
    export_review(rows, review, n=100, rejected_path=rejected)
    judged = _judged([rows, rejected])
    if suffix == ".csv":
        with review.open() as handle:
            entries = list(csv.DictReader(handle))
    else:
        entries = [json.loads(line) for line in review.read_text().splitlines()]
    # the human agrees with the judge everywhere except: flips one answer on the first row of
    # pos_for_qpos_ipos, and leaves the second row's plausibility checks blank
    for number, entry in enumerate(entries):
        for check in CHECKS:
            answer = judged[entry["synth_id"]][check.name]["verdict"]
            if number == 0 and check.name == "pos_for_qpos_ipos":
                answer = not answer
            entry[HUMAN_PREFIX + check.name] = "yes" if answer else "no"
            if number == 1 and check.kind == "plausible":
                entry[HUMAN_PREFIX + check.name] = ""
    if suffix == ".csv":
        with review.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
            writer.writeheader()
            writer.writerows(entries)
    else:
        review.write_text("".join(json.dumps(e) + "\n" for e in entries))
    report = import_review(review, [rows, rejected])
    assert report["rows"] == report["rows_rated"] == 8
    first = report["checks"]["pos_for_qpos_ipos"]
    assert (first["rated"], first["agree"]) == (8, 7) and first["agreement"] == 0.875
    # the judge said yes 7 times and no once (the rejected row); the human flipped one answer
    assert first["kappa"] is not None and first["kappa"] < 1
    assert report["checks"]["ineg_plausible"]["rated"] == 7
    assert report["checks"]["pos_for_qpos_ineg"]["agreement"] == 1.0
    # every judge answer of pos_for_qpos_ineg is "no": chance agreement is total, kappa undefined
    assert report["checks"]["pos_for_qpos_ineg"]["kappa"] is None
    assert report["keep_decision"]["rated"] == 7
    assert "pos_for_qpos_ipos" in format_review_report(report)


def test_import_names_the_bad_cell(tmp_path, synth_output):
    rows, _ = synth_output
    review = tmp_path / "review.csv"
    export_review(rows, review, n=2)
    text = review.read_text().splitlines()
    header = text[0].split(",")
    cells = next(csv.reader([text[2]]))
    cells[header.index(HUMAN_PREFIX + "qneg_plausible")] = "maybe"
    with review.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerow(next(csv.reader([text[1]])))
        writer.writerow(cells)
    with pytest.raises(
        InputError, match=r"review.csv, line 3, field 'human_qneg_plausible': expected yes/no"
    ):
        import_review(review, [rows])
    with pytest.raises(InputError, match="in none of the given rows files"):
        import_review(review, [tmp_path / "rows.rejected.jsonl"])
