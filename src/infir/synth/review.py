"""The human check of a sample (SPEC §2, step 6): export rows for review, import the verdicts, compare.

The export is blind: it shows the row and one empty ``human_<check>`` column per judge check
(`infir.synth.stages.CHECKS`), never the judge's answers, so reviewers are not anchored. The
import looks the judge's verdicts up by ``synth_id`` in the synthesis output and reports how
often human and judge agree, per check and on the keep/reject decision.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from pathlib import Path

from infir.data.errors import InputError
from infir.data.io import atomic_path, iter_jsonl, write_jsonl_atomic
from infir.data.records import INF_FIELDS
from infir.synth.stages import CHECKS

HUMAN_PREFIX = "human_"
REVIEW_COLUMNS: tuple[str, ...] = (
    "synth_id",
    *INF_FIELDS,
    *(HUMAN_PREFIX + check.name for check in CHECKS),
    "notes",
)
_YES = {"yes", "y", "true", "t", "1"}
_NO = {"no", "n", "false", "f", "0"}


def review_questions() -> dict[str, str]:
    """The question each ``human_<check>`` column answers (yes/no)."""
    return {HUMAN_PREFIX + check.name: check.question for check in CHECKS}


def _rows_with_verdicts(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path) if isinstance(row.get("verdicts"), dict) and "synth_id" in row]


def export_review(
    rows_path: str | Path,
    out_path: str | Path,
    n: int = 100,
    seed: int = 0,
    rejected_path: str | Path | None = None,
) -> int:
    """Write a seeded sample of synthesised rows for human review, as CSV or JSONL (by `out_path` suffix).

    Args:
        rows_path: the kept rows of a synthesis run.
        out_path: ``.csv`` (for a spreadsheet) or ``.jsonl``.
        n: rows in the sample (100 in the paper).
        seed: sampling seed.
        rejected_path: also sample rows the judge rejected at validation (they carry verdicts);
            without them every judge verdict in the sample is "keep", and agreement cannot tell
            a careful judge from a lenient one.

    Returns:
        The number of rows written.
    """
    rows = _rows_with_verdicts(Path(rows_path))
    if rejected_path is not None:
        rows += _rows_with_verdicts(Path(rejected_path))
    sample = random.Random(seed).sample(rows, min(n, len(rows)))
    blank = {HUMAN_PREFIX + check.name: "" for check in CHECKS}
    review = [{"synth_id": r["synth_id"], **{f: r.get(f, "") for f in INF_FIELDS}, **blank, "notes": ""}
              for r in sample]  # fmt: skip
    out_path = Path(out_path)
    if out_path.suffix == ".csv":
        with atomic_path(out_path, encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REVIEW_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(review)
    else:
        write_jsonl_atomic(out_path, review)
    return len(review)


def _human_verdict(value: object, path: Path, line: int, column: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise InputError(path, line, column, f"expected yes/no (or empty), got {value!r}")


def _read_review(path: Path) -> Iterable[tuple[int, dict]]:
    if path.suffix == ".csv":
        if not path.exists():
            raise InputError(path, None, None, "file not found")
        with path.open(encoding="utf-8", newline="") as handle:
            # Line 1 is the header, so data row k sits on line k + 1.
            yield from enumerate(csv.DictReader(handle), start=2)
    else:
        yield from iter_jsonl(path)


def _kappa(pairs: list[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters on yes/no answers; None where chance agreement is total."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(a == b for a, b in pairs) / n
    human_yes = sum(a for a, _ in pairs) / n
    judge_yes = sum(b for _, b in pairs) / n
    chance = human_yes * judge_yes + (1 - human_yes) * (1 - judge_yes)
    return None if chance >= 1 else round((observed - chance) / (1 - chance), 4)


def _summary(pairs: list[tuple[bool, bool]]) -> dict:
    agree = sum(a == b for a, b in pairs)
    return {
        "rated": len(pairs),
        "agree": agree,
        "agreement": round(agree / len(pairs), 4) if pairs else None,
        "kappa": _kappa(pairs),
        "human_yes": sum(a for a, _ in pairs),
        "judge_yes": sum(b for _, b in pairs),
    }


def import_review(review_path: str | Path, rows_paths: Iterable[str | Path]) -> dict:
    """Compare filled-in human verdicts with the judge's.

    Args:
        review_path: the file `export_review` wrote, with ``human_<check>`` columns filled
            (yes/no; empty = not rated).
        rows_paths: the synthesis output files holding the judge's verdicts (kept rows, and the
            rejected rows when the sample included them).

    Returns:
        ``{"rows": n, "rows_rated": n, "checks": {check: {rated, agree, agreement, kappa, human_yes,
        judge_yes}}, "overall": {...}, "keep_decision": {...}}``; `keep_decision` compares, over
        rows with every check rated, "all human answers as a good row needs" with the judge's keep.
    """
    review_path = Path(review_path)
    judged: dict[str, dict] = {}
    for path in rows_paths:
        for row in _rows_with_verdicts(Path(path)):
            judged[row["synth_id"]] = row["verdicts"]
    per_check: dict[str, list[tuple[bool, bool]]] = {check.name: [] for check in CHECKS}
    keep_pairs: list[tuple[bool, bool]] = []
    rows = rated_rows = 0
    for line, entry in _read_review(review_path):
        synth_id = entry.get("synth_id")
        if not synth_id:
            raise InputError(review_path, line, "synth_id", "missing")
        if synth_id not in judged:
            raise InputError(
                review_path, line, "synth_id", f"{synth_id!r} is in none of the given rows files"
            )
        rows += 1
        human_all = []
        for check in CHECKS:
            column = HUMAN_PREFIX + check.name
            human = _human_verdict(entry.get(column), review_path, line, column)
            judge = judged[synth_id].get(check.name)
            if human is None or judge is None:
                continue
            per_check[check.name].append((human, bool(judge["verdict"])))
            human_all.append(human == check.expected)
        if human_all:
            rated_rows += 1
        if len(human_all) == len(CHECKS):
            judge_keep = all(judged[synth_id][c.name]["passed"] for c in CHECKS if c.name in judged[synth_id])
            keep_pairs.append((all(human_all), judge_keep))
    everything = [p for pairs in per_check.values() for p in pairs]
    return {
        "rows": rows,
        "rows_rated": rated_rows,
        "checks": {name: _summary(pairs) for name, pairs in per_check.items()},
        "overall": _summary(everything),
        "keep_decision": _summary(keep_pairs),
    }


def format_review_report(report: dict) -> str:
    """A plain-text table of `import_review`'s report."""
    lines = [f"{'check':<22} {'rated':>5} {'agree':>6} {'kappa':>6}"]
    for name, s in [*report["checks"].items(), ("ALL checks", report["overall"]),
                    ("keep decision", report["keep_decision"])]:  # fmt: skip
        agreement = "-" if s["agreement"] is None else f"{100 * s['agreement']:.0f}%"
        kappa = "-" if s["kappa"] is None else f"{s['kappa']:.2f}"
        lines.append(f"{name:<22} {s['rated']:>5} {agreement:>6} {kappa:>6}")
    return "\n".join(lines) + "\n" + json.dumps({"rows": report["rows"], "rows_rated": report["rows_rated"]})
