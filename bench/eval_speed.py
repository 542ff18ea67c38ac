"""Speed of infir's p-MRR + standard metrics against mteb's `evaluate_p_mrr_change`, same runs.

Both sides get the same synthetic FollowIR-style runs (default 1,000 queries x 1,000 candidates,
scores rounded so that exact ties occur, some relevant documents never retrieved). The numbers
must agree: p-MRR and MRR@10 to 1e-9; nDCG@10, MAP@1000 and Recall@100 to mteb's own 5-decimal
rounding (mteb rounds those aggregates). Prints the time ratio and writes
`bench/results/eval_speed.json`.

mteb's function also computes precision, hit rate and the nAUC abstention scores, which infir does
not; so a second, like-for-like ratio is reported for the p-MRR computation alone (infir `p_mrr`
vs mteb `calculate_pmrr`).

    .venv/bin/python bench/eval_speed.py [--queries 1000] [--candidates 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from infir.data import write_json_atomic
from infir.evaluate.metrics import changed_documents, p_mrr, standard_metrics

RESULT = Path(__file__).resolve().parent / "results" / "eval_speed.json"
MEASURES = ("nDCG@10", "MAP@1000", "R@100", "MRR@10")
# infir name -> (mteb score key, tolerance): mteb rounds nDCG/MAP/recall aggregates to 5 decimals.
MTEB_KEYS = {
    "nDCG@10": ("ndcg_at_10", 5),
    "MAP@1000": ("map_at_1000", 5),
    "R@100": ("recall_at_100", 5),
    "MRR@10": ("mrr_at_10", None),
}


def make_runs(n_queries: int, n_candidates: int, seed: int) -> tuple[dict, dict, dict, dict]:
    """FollowIR-like data: og qrels, changed qrels (half the og positives dropped), og and changed runs."""
    rng = np.random.default_rng(seed)
    qrels_og: dict[str, dict[str, int]] = {}
    qrels_changed: dict[str, dict[str, int]] = {}
    og_run: dict[str, dict[str, float]] = {}
    changed_run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = str(q)
        doc_ids = [f"doc{d}" for d in rng.choice(100_000, size=n_candidates, replace=False)]
        og_scores = np.round(rng.random(n_candidates), 3)  # 3 decimals: exact ties happen
        new_scores = np.round(np.clip(og_scores + rng.normal(0, 0.1, n_candidates), 0, 1), 3)
        og_run[qid] = dict(zip(doc_ids, og_scores.tolist(), strict=True))
        changed_run[qid] = dict(zip(doc_ids, new_scores.tolist(), strict=True))
        relevant = [doc_ids[i] for i in rng.choice(n_candidates, size=10, replace=False)]
        # Judged relevant, never retrieved (rank len(run)+1), and among the changed documents.
        relevant.insert(1, f"unretrieved{q}")
        qrels_og[qid] = {d: 1 for d in relevant}
        qrels_changed[qid] = {d: 1 for d in relevant[::2]} | {d: 0 for d in relevant[1::2]}
    return qrels_og, qrels_changed, og_run, changed_run


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, value = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    logging.getLogger("mteb").setLevel(logging.ERROR)
    from mteb._evaluators.retrieval_metrics import calculate_pmrr, evaluate_p_mrr_change

    qrels_og, qrels_changed, og_run, changed_run = make_runs(args.queries, args.candidates, args.seed)
    changed = changed_documents(qrels_og, qrels_changed)

    def infir_all() -> dict:
        return {
            "p_mrr": p_mrr(og_run, changed_run, changed).p_mrr,
            "og": standard_metrics(qrels_og, og_run, MEASURES)[0],
            "changed": standard_metrics(qrels_changed, changed_run, MEASURES)[0],
        }

    # mteb's layout: one dict, query ids suffixed -og / -changed.
    mteb_qrels = {f"{q}-og": r for q, r in qrels_og.items()} | {
        f"{q}-changed": r for q, r in qrels_changed.items()
    }
    mteb_og = {f"{q}-og": r for q, r in og_run.items()}
    mteb_new = {f"{q}-changed": r for q, r in changed_run.items()}
    mteb_results = mteb_og | mteb_new

    def mteb_all() -> dict:
        # k=1 is required: mteb's score dict reads Recall@1 for its "accuracy" entry.
        return evaluate_p_mrr_change(mteb_qrels, mteb_results, changed, [1, 10, 100, 1000])

    infir_seconds, ours = best_time(infir_all, args.repeats)
    mteb_seconds, theirs = best_time(mteb_all, args.repeats)
    infir_pmrr_seconds, ours_pmrr = best_time(lambda: p_mrr(og_run, changed_run, changed), args.repeats)
    mteb_pmrr_seconds, theirs_pmrr = best_time(
        lambda: calculate_pmrr(mteb_og, mteb_new, changed), args.repeats
    )

    # Identical numbers, or no timing is worth reporting.
    assert abs(ours["p_mrr"] - theirs["p-MRR"] * 100) <= 1e-9, (ours["p_mrr"], theirs["p-MRR"])
    assert abs(ours_pmrr.p_mrr - theirs_pmrr * 100) <= 1e-9
    for side in ("og", "changed"):
        for name, (key, decimals) in MTEB_KEYS.items():
            mine, reference = ours[side][name], theirs[side][key]
            if decimals is None:
                assert abs(mine - reference) <= 1e-9, (side, name, mine, reference)
            else:
                assert round(mine, decimals) == reference, (side, name, mine, reference)

    result = {
        "benchmark": "eval_speed",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "setup": {
            "queries": args.queries,
            "candidates_per_query": args.candidates,
            "changed_docs": sum(len(docs) for docs in changed.values()),
            "repeats": args.repeats,
            "timing": "best of repeats, seconds",
            "seed": args.seed,
            "infir_measures": list(MEASURES),
            "mteb_k_values": [1, 10, 100, 1000],
        },
        "p_mrr_x100": ours["p_mrr"],
        "og": ours["og"],
        "changed": ours["changed"],
        "agreement": "p-MRR and MRR@10 within 1e-9; nDCG/MAP/Recall equal at mteb's 5-decimal rounding",
        "full": {
            "infir_seconds": infir_seconds,
            "mteb_evaluate_p_mrr_change_seconds": mteb_seconds,
            "speedup": mteb_seconds / infir_seconds,
        },
        "p_mrr_only": {
            "infir_seconds": infir_pmrr_seconds,
            "mteb_calculate_pmrr_seconds": mteb_pmrr_seconds,
            "speedup": mteb_pmrr_seconds / infir_pmrr_seconds,
        },
    }
    write_json_atomic(args.out, result)
    print(f"{args.queries} queries x {args.candidates} candidates; p-MRR {ours['p_mrr']:.4f} (both)")
    print(
        f"p-MRR + metrics: infir {infir_seconds:.3f}s, mteb evaluate_p_mrr_change {mteb_seconds:.3f}s "
        f"-> {mteb_seconds / infir_seconds:.1f}x"
    )
    print(
        f"p-MRR only:      infir {infir_pmrr_seconds:.4f}s, mteb calculate_pmrr {mteb_pmrr_seconds:.3f}s "
        f"-> {mteb_pmrr_seconds / infir_pmrr_seconds:.1f}x"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
