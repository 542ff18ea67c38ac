"""p-MRR against mteb's reference implementation, robustness@10 by hand, standard metrics vs pytrec_eval."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import pytrec_eval

from infir.evaluate.metrics import (
    MEASURES,
    changed_documents,
    p_mrr,
    parse_measure,
    robustness_at_10,
    standard_metrics,
)

mteb_metrics = pytest.importorskip("mteb._evaluators.retrieval_metrics")

OG = {"0": 1, "1": 2, "2": 3, "3": 4}
ZERO_ON_TOP = {"0": 4, "1": 1, "2": 2, "3": 3}


# --------------------------------------------------------------------------- p-MRR: mteb's own vectors
def test_p_mrr_mteb_vectors() -> None:
    changed = {"a": ["0"]}
    # Rank 4 -> rank 1 after the change: the document rose against the instruction.
    assert p_mrr({"a": OG}, {"a": ZERO_ON_TOP}, changed).p_mrr == pytest.approx(-75.0, abs=1e-12)
    assert p_mrr({"a": ZERO_ON_TOP}, {"a": OG}, changed).p_mrr == pytest.approx(75.0, abs=1e-12)
    assert p_mrr({"a": OG}, {"a": dict(OG)}, changed).p_mrr == 0.0


def test_p_mrr_ties_break_by_doc_id_not_insertion_order() -> None:
    tied = {"0": 0.5, "1": 0.5, "2": 0.5}
    result = p_mrr({"a": tied}, {"a": dict(reversed(tied.items()))}, {"a": ["0"]})
    assert result.p_mrr == 0.0
    # Doc "0" has the smallest id, so among three equal scores it ranks 3rd; moving alone to the top
    # is a rise from 3 to 1: 1/3 - 1.
    result = p_mrr({"a": tied}, {"a": {**tied, "0": 0.9}}, {"a": ["0"]})
    assert result.p_mrr == pytest.approx((1 / 3 - 1) * 100)


def test_p_mrr_missing_document_ranks_after_the_run() -> None:
    # Absent from the changed run of 4 documents: rank 5, fell from 1: 1 - 1/5.
    result = p_mrr({"a": ZERO_ON_TOP}, {"a": {"1": 3, "2": 2, "3": 1, "4": 0}}, {"a": ["0"]})
    assert result.per_query == {"a": pytest.approx(80.0)}


def test_p_mrr_means_per_query_then_over_queries() -> None:
    og = {"a": OG, "b": OG}
    changed_run = {"a": ZERO_ON_TOP, "b": OG}
    # Query a: doc 0 gets -0.75, doc 3 (rank 1 -> 2) gets +0.5: mean -0.125; query b: 0.
    result = p_mrr(og, changed_run, {"a": ["0", "3"], "b": ["0"]})
    assert result.per_query == {"a": pytest.approx(-12.5), "b": 0.0}
    assert result.p_mrr == pytest.approx(-6.25)
    assert result.n_queries == 2


def test_p_mrr_skips_queries_missing_from_a_run_and_rejects_nothing_to_measure() -> None:
    result = p_mrr({"a": OG, "b": OG}, {"a": OG}, {"a": ["0"], "b": ["0"]})
    assert result.n_queries == 1 and result.skipped_queries == ["b"]
    with pytest.raises(ValueError, match="no query"):
        p_mrr({"a": OG}, {"a": OG}, {"a": []})


def _random_run(rng: random.Random, doc_ids: list[str], keep: float, tie_levels: int | None) -> dict:
    run = {}
    for doc_id in doc_ids:
        if rng.random() < keep:
            # Few score levels force many exact ties, so the doc-id rule is exercised.
            run[doc_id] = float(rng.randrange(tie_levels)) if tie_levels else rng.random()
    return run


@pytest.mark.parametrize("seed", range(25))
def test_p_mrr_agrees_with_mteb_on_random_runs(seed: int) -> None:
    rng = random.Random(seed)
    og_run, changed_run, changed = {}, {}, {}
    for q in range(rng.randint(1, 30)):
        qid = f"q{q}"
        doc_ids = [f"d{rng.randrange(200)}" for _ in range(rng.randint(1, 60))]
        tie_levels = rng.choice([None, 2, 5])
        og_run[qid] = _random_run(rng, doc_ids, 0.9, tie_levels)
        changed_run[qid] = _random_run(rng, doc_ids, 0.9, tie_levels)
        # Changed docs may be in neither run (rank len+1 in both).
        changed[qid] = list(dict.fromkeys(rng.choices(doc_ids + ["absent"], k=rng.randint(1, 5))))
    ours = p_mrr(og_run, changed_run, changed)
    reference = mteb_metrics.calculate_pmrr(
        {f"{q}-og": r for q, r in og_run.items()},
        {f"{q}-changed": r for q, r in changed_run.items()},
        changed,
    )
    assert math.isclose(ours.p_mrr, reference * 100, rel_tol=0, abs_tol=1e-9)


def test_changed_documents_is_og_relevant_minus_changed_relevant() -> None:
    og = {"a": {"1": 1, "2": 2, "3": 0, "4": 1}, "b": {"1": 1}, "c": {"9": 1}}
    after = {"a": {"1": 1, "2": 0}, "b": {"1": 1}}
    assert changed_documents(og, after) == {"a": ["2", "4"], "c": ["9"]}


# --------------------------------------------------------------------------- robustness@10
def test_robustness_at_10_takes_worst_variant_per_base() -> None:
    qrels = {"1_1": {"x": 1}, "1_2": {"y": 1}, "2_1": {"z": 1}}
    run = {
        "1_1": {"x": 1.0, "y": 0.5},  # rank 1: nDCG 1
        "1_2": {"x": 1.0, "y": 0.5},  # rank 2: nDCG 1/log2(3)
        "2_1": {"z": 0.1},  # rank 1: nDCG 1
    }
    mean, per_base = robustness_at_10(qrels, run)
    assert per_base == {"1": pytest.approx(1 / math.log2(3)), "2": 1.0}
    assert mean == pytest.approx((1 / math.log2(3) + 1) / 2)
    # A variant with no run retrieved nothing: 0, and it is the base's minimum.
    mean, per_base = robustness_at_10({**qrels, "2_2": {"z": 1}}, run)
    assert per_base["2"] == 0.0
    # A custom base id rule: everything one base.
    mean, per_base = robustness_at_10(qrels, run, base_of=lambda qid: "all")
    assert per_base == {"all": pytest.approx(1 / math.log2(3))}


# --------------------------------------------------------------------------- standard metrics
QRELS = {
    "q1": {"d1": 2, "d2": 0, "d3": 1},
    "q2": {"d4": 1},
    "q3": {"d9": 1},
}
RUN = {
    "q1": {"d1": 0.2, "d2": 0.9, "d3": 0.5, "d5": 0.1},
    "q2": {f"d{i}": 1.0 / i for i in range(5, 25)} | {"d4": 0.001},  # relevant doc at rank 21
    "q3": {"d9": 0.3, "d8": 0.3},  # tie: "d9" > "d8", so d9 first
}


def test_standard_metrics_equal_pytrec_eval_direct() -> None:
    aggregate, per_query = standard_metrics(QRELS, RUN, ("nDCG@10", "MAP@1000", "R@100", "P@5"))
    direct = pytrec_eval.RelevanceEvaluator(QRELS, {"ndcg_cut.10", "map_cut.1000", "recall.100", "P.5"})
    expected = direct.evaluate(RUN)
    for qid, scores in expected.items():
        assert per_query[qid] == {
            "nDCG@10": scores["ndcg_cut_10"],
            "MAP@1000": scores["map_cut_1000"],
            "R@100": scores["recall_100"],
            "P@5": scores["P_5"],
        }
    assert aggregate["nDCG@10"] == pytest.approx(sum(s["ndcg_cut_10"] for s in expected.values()) / 3)


def test_standard_metrics_accept_numpy_float32_scores() -> None:
    as_float32 = {qid: {d: np.float32(s) for d, s in docs.items()} for qid, docs in RUN.items()}
    assert standard_metrics(QRELS, as_float32)[1]["q1"] == standard_metrics(QRELS, RUN)[1]["q1"]


def test_ndcg_at_10_by_hand() -> None:
    # q1 ranks d2 (rel 0), d3 (rel 1), d1 (rel 2); trec_eval's gain is the relevance itself.
    # DCG = 1/log2(3) + 2/log2(4); ideal order d1, d3: 2/log2(2) + 1/log2(3).
    _, per_query = standard_metrics(QRELS, RUN, ("nDCG@10",))
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert per_query["q1"]["nDCG@10"] == pytest.approx(dcg / ideal)
    assert per_query["q3"]["nDCG@10"] == 1.0


def test_mrr_at_k_cuts_recip_rank() -> None:
    aggregate, per_query = standard_metrics(QRELS, RUN, ("MRR@10", "MRR@100"))
    assert per_query["q1"]["MRR@10"] == 0.5
    assert per_query["q2"]["MRR@10"] == 0.0  # first relevant at rank 21
    assert per_query["q2"]["MRR@100"] == pytest.approx(1 / 21)
    assert aggregate["MRR@10"] == pytest.approx((0.5 + 0 + 1) / 3)


def test_mrr_at_k_agrees_with_mteb() -> None:
    reference = mteb_metrics.mrr(QRELS, RUN, [1, 3, 10, 100])
    _, per_query = standard_metrics(QRELS, RUN, ("MRR@1", "MRR@3", "MRR@10", "MRR@100"))
    for k in (1, 3, 10, 100):
        assert [per_query[q][f"MRR@{k}"] for q in RUN] == pytest.approx(reference[f"MRR@{k}"])


def test_measure_names() -> None:
    assert set(MEASURES) == {"nDCG", "MAP", "R", "P", "MRR"}
    assert parse_measure("nDCG@5").pytrec_measure == "ndcg_cut.5"
    assert parse_measure("MRR@10").pytrec_measure == "recip_rank"
    for bad in ("ndcg@10", "nDCG", "nDCG@0", "Foo@3"):
        with pytest.raises(ValueError, match="unknown measure"):
            parse_measure(bad)
