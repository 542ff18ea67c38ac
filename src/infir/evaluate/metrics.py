"""Instruction-following metrics (p-MRR, robustness@10) and standard IR metrics through pytrec_eval.

p-MRR follows FollowIR's reference implementation in mteb (`_evaluators/retrieval_metrics.py`)
bit for bit in its rules: a document's rank is its 1-based position after sorting the run by
(score, doc_id) descending, ``len(run) + 1`` when the run lacks it; per changed document
``s = R_new/R_og - 1`` when ``R_og >= R_new`` else ``1 - R_og/R_new``; the mean over a query's
changed documents, then over queries, reported x100. It is vectorised with numpy: one sort of the
scores per run per query, binary searches for the ranks, and Python only for exact score ties.

Standard metrics are never hand-written: names such as ``nDCG@10`` are translated to
pytrec_eval (trec_eval) measures through `MEASURES`, in the spirit of ir_measures (what is
measured, separate from how it is computed).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytrec_eval

from infir.data.beir import Qrels

Run = dict[str, dict[str, float]]
"""qid -> {doc_id: score}; higher scores rank first."""

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- instruction following


def changed_documents(qrels_og: Qrels, qrels_changed: Qrels) -> dict[str, list[str]]:
    """Documents whose relevance the changed instruction takes away (FollowIR's `qrel_diff`).

    Args:
        qrels_og: relevance under the original instruction.
        qrels_changed: relevance under the changed instruction (same query ids).

    Returns:
        qid -> doc ids relevant (> 0) under og but not under changed, in the og qrels' order.
        Queries where nothing changed are left out: p-MRR has nothing to measure for them.
    """
    changed: dict[str, list[str]] = {}
    for qid, judged in qrels_og.items():
        after = qrels_changed.get(qid, {})
        docs = [doc_id for doc_id, rel in judged.items() if rel > 0 and after.get(doc_id, 0) <= 0]
        if docs:
            changed[qid] = docs
    return changed


@dataclass
class PMrrResult:
    """p-MRR of a pair of runs.

    Attributes:
        p_mrr: mean over queries, x100 (as FollowIR and papers report it); in [-100, 100].
        per_query: qid -> that query's p-MRR, x100.
        n_queries: number of queries averaged.
        skipped_queries: queries with changed documents but absent from one of the runs (mteb logs
            and skips these too); they are not in the mean.
    """

    p_mrr: float
    per_query: dict[str, float]
    n_queries: int
    skipped_queries: list[str] = field(default_factory=list)


def _ranks(run: dict[str, float], doc_ids: Sequence[str]) -> np.ndarray:
    """1-based ranks of `doc_ids` in `run` sorted by (score, doc_id) descending; len(run)+1 if absent."""
    size = len(run)
    ranks = np.full(len(doc_ids), size + 1, dtype=np.int64)
    present = [(i, run[d]) for i, d in enumerate(doc_ids) if d in run]
    if not present:
        return ranks
    scores = np.fromiter(run.values(), dtype=np.float64, count=size)
    sorted_scores = np.sort(scores)
    positions = np.fromiter((i for i, _ in present), dtype=np.int64, count=len(present))
    wanted = np.fromiter((s for _, s in present), dtype=np.float64, count=len(present))
    below_or_equal = np.searchsorted(sorted_scores, wanted, side="right")
    ties = below_or_equal - np.searchsorted(sorted_scores, wanted, side="left")
    ranks[positions] = size - below_or_equal + 1
    tied_slots = np.flatnonzero(ties > 1)
    if len(tied_slots):
        # Equal scores order by doc id, descending (mteb, and trec_eval): count tied ids above ours.
        run_ids = list(run)
        for slot in tied_slots:
            doc_id = doc_ids[positions[slot]]
            tied = np.flatnonzero(scores == wanted[slot])
            ranks[positions[slot]] += sum(1 for i in tied if run_ids[i] > doc_id)
    return ranks


def p_mrr(og_run: Run, changed_run: Run, changed_docs: dict[str, list[str]]) -> PMrrResult:
    """Pairwise MRR change between the run with the original and the changed instruction.

    Args:
        og_run: qid -> {doc_id: score} retrieved with the original instruction.
        changed_run: the same queries (same ids, no ``-og``/``-changed`` suffix) with the changed one.
        changed_docs: qid -> documents relevant under og but not under changed
            (see `changed_documents`).

    Returns:
        PMrrResult; positive when the changed documents fall, as the changed instruction demands.

    Raises:
        ValueError: when no query has changed documents and both runs.
    """
    qids: list[str] = []
    counts: list[int] = []
    og_ranks: list[np.ndarray] = []
    new_ranks: list[np.ndarray] = []
    skipped: list[str] = []
    for qid, docs in changed_docs.items():
        if not docs:
            continue
        if qid not in og_run or qid not in changed_run:
            skipped.append(qid)
            continue
        qids.append(qid)
        counts.append(len(docs))
        og_ranks.append(_ranks(og_run[qid], docs))
        new_ranks.append(_ranks(changed_run[qid], docs))
    if skipped:
        logger.warning("p-MRR: %d queries with changed documents are missing from a run", len(skipped))
    if not qids:
        raise ValueError("p-MRR: no query has changed documents and appears in both runs")
    og = np.concatenate(og_ranks).astype(np.float64)
    new = np.concatenate(new_ranks).astype(np.float64)
    # The same arithmetic as mteb's rank_score, so the floats agree to the last bit per document.
    scores = np.where(og >= new, (1 / og) / (1 / new) - 1, 1 - (1 / new) / (1 / og))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    per_query_mean = np.add.reduceat(scores, starts) / np.asarray(counts, dtype=np.float64)
    per_query = {qid: float(v) * 100 for qid, v in zip(qids, per_query_mean, strict=True)}
    return PMrrResult(
        p_mrr=float(np.mean(per_query_mean)) * 100,
        per_query=per_query,
        n_queries=len(qids),
        skipped_queries=skipped,
    )


def robustness_at_10(
    qrels: Qrels, run: Run, base_of: Callable[[str], str] | None = None
) -> tuple[float, dict[str, float]]:
    """InstructIR's Robustness@10: per base query the worst nDCG@10 over its instruction variants.

    Args:
        qrels: qrels keyed by variant query id (InstructIR: ``<base>_<k>``).
        run: the run over the same variant ids.
        base_of: maps a variant id to its base query id; default: the part before the first ``_``
            (as mteb does).

    Returns:
        (mean over base queries of the minimum nDCG@10, base id -> that minimum). A variant in the
        qrels but absent from the run scores 0: it retrieved nothing.
    """
    base_of = base_of or (lambda qid: qid.split("_", 1)[0])
    _, per_query = standard_metrics(qrels, run, ("nDCG@10",))
    worst: dict[str, float] = {}
    for qid in qrels:
        value = per_query.get(qid, {}).get("nDCG@10", 0.0)
        base = base_of(qid)
        worst[base] = min(worst.get(base, value), value)
    if not worst:
        raise ValueError("robustness@10: the qrels are empty")
    return math.fsum(worst.values()) / len(worst), worst


# --------------------------------------------------------------------------- standard metrics

MEASURES: dict[str, str] = {
    "nDCG": "ndcg_cut",
    "MAP": "map_cut",
    "R": "recall",
    "P": "P",
    "MRR": "recip_rank",
}
"""Canonical measure family (used as ``<family>@<k>``) -> pytrec_eval measure family.

``MRR@k`` uses trec_eval's ``recip_rank`` (which has no cutoff) and keeps the value only when it
is at least 1/k, i.e. when the first relevant document ranks within the top k: that is exactly
MRR@k, with ranks ordered by trec_eval itself.
"""

_MEASURE_NAME = re.compile(r"^(?P<family>[A-Za-z]+)@(?P<cutoff>[1-9][0-9]*)$")


@dataclass(frozen=True)
class Measure:
    """One parsed measure name such as ``nDCG@10``."""

    family: str
    cutoff: int

    @property
    def name(self) -> str:
        return f"{self.family}@{self.cutoff}"

    @property
    def pytrec_measure(self) -> str:
        """The string handed to ``pytrec_eval.RelevanceEvaluator``."""
        trec = MEASURES[self.family]
        return trec if trec == "recip_rank" else f"{trec}.{self.cutoff}"

    @property
    def pytrec_key(self) -> str:
        """The key pytrec_eval's per-query result dicts use for it."""
        trec = MEASURES[self.family]
        return trec if trec == "recip_rank" else f"{trec}_{self.cutoff}"

    def value(self, scores: dict[str, float]) -> float:
        raw = scores[self.pytrec_key]
        if self.family == "MRR":
            return raw if raw >= 1.0 / self.cutoff else 0.0
        return raw


def parse_measure(name: str) -> Measure:
    """``"nDCG@10"`` -> Measure("nDCG", 10); a clear ValueError for anything else."""
    match = _MEASURE_NAME.match(name.strip())
    if not match or match["family"] not in MEASURES:
        known = ", ".join(f"{family}@k" for family in MEASURES)
        raise ValueError(f"unknown measure {name!r}; expected one of {known} (k a positive integer)")
    return Measure(match["family"], int(match["cutoff"]))


def standard_metrics(
    qrels: Qrels,
    run: Run,
    measures: Sequence[str] = ("nDCG@10", "MAP@1000", "R@100", "MRR@10"),
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Standard IR metrics computed by pytrec_eval.

    Args:
        qrels: qid -> {doc_id: relevance}.
        run: qid -> {doc_id: score}; ties rank by doc id descending (trec_eval's rule).
        measures: canonical names, see `MEASURES`.

    Returns:
        (measure -> mean over evaluated queries, qid -> {measure -> value}). As in trec_eval and
        mteb, the evaluated queries are those present in both the qrels and the run.
    """
    parsed = [parse_measure(m) for m in measures]
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {m.pytrec_measure for m in parsed})
    try:
        raw = evaluator.evaluate(run)
    except TypeError:
        # pytrec_eval takes only Python floats (float64 passes, float32 does not): convert, only when needed.
        raw = evaluator.evaluate({qid: {d: float(s) for d, s in docs.items()} for qid, docs in run.items()})
    per_query = {qid: {m.name: m.value(scores) for m in parsed} for qid, scores in raw.items()}
    aggregate = {m.name: _mean(q[m.name] for q in per_query.values()) for m in parsed}
    return aggregate, per_query


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return math.fsum(values) / len(values) if values else float("nan")
