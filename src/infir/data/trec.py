"""TREC run files (`qid Q0 docid rank score tag`) and TREC qrels (`qid 0 docid rel`) (SPEC §6).

Reading qrels, BEIR tsv or TREC, is `infir.data.beir.read_qrels`; this module writes them.

Runs are written in the order every metric here ranks them: score descending, ties broken by
document id descending (the FollowIR/mteb p-MRR rule), so the file and the numbers agree.
"""

from __future__ import annotations

from pathlib import Path

from infir.data.errors import InputError
from infir.data.io import atomic_path

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """(doc_id, score) pairs sorted by (score, doc_id) descending: the ranking p-MRR uses."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def _check_token(value: str, what: str) -> str:
    # A space inside an id would shift every later column of the line.
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{what} {value!r} cannot be written to a TREC file (empty or contains whitespace)")
    return value


def write_run(path: str | Path, run: Run, tag: str = "infir", depth: int | None = None) -> Path:
    """Write `run` as a TREC run file atomically; `depth` keeps only each query's top documents."""
    _check_token(tag, "run tag")
    with atomic_path(path) as handle:
        for qid in sorted(run):
            _check_token(qid, "query id")
            for rank, (doc_id, score) in enumerate(ranked(run[qid])[:depth], start=1):
                handle.write(f"{qid} Q0 {_check_token(doc_id, 'document id')} {rank} {score:.6f} {tag}\n")
    return Path(path)


def read_run(path: str | Path) -> Run:
    """A TREC run file -> {qid: {doc_id: score}}; bad lines raise InputError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, None, "run file not found")
    run: Run = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            parts = raw.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise InputError(
                    path, line_no, None, f"expected 6 columns (qid Q0 docid rank score tag), got {len(parts)}"
                )
            qid, _, doc_id, _, score, _ = parts
            try:
                run.setdefault(qid, {})[doc_id] = float(score)
            except ValueError:
                raise InputError(path, line_no, "score", f"not a number: {score!r}") from None
    return run


def write_trec_qrels(path: str | Path, qrels: Qrels) -> Path:
    """Write qrels in TREC format (`qid 0 docid rel`) atomically."""
    with atomic_path(path) as handle:
        for qid in sorted(qrels):
            _check_token(qid, "query id")
            for doc_id, relevance in sorted(qrels[qid].items()):
                handle.write(f"{qid} 0 {_check_token(doc_id, 'document id')} {int(relevance)}\n")
    return Path(path)
