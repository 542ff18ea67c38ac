"""The 11 objectives against direct loop computations of their SPEC §4 formulas, and InstructionLoss on a
tiny encoder (wiring of the three pairs per row, gradients, blank instructions, query encoder)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from infir.data.records import INF_FIELDS
from infir.train.losses import (
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    InstructionLoss,
    Objective,
    objective_loss,
    pairs_from_batch,
    parse_objective,
)
from infir.train.losses.instruction_loss import length_buckets

TAU = 0.05


# --- direct computations: plain python loops over k and j, on lists of floats -----------------------


def _s(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(sum(x * y for x, y in zip(a.tolist(), b.tolist(), strict=True))) / TAU


def _direct_terms(q, p, swaps, mask) -> dict[str, list[tuple[float, list[float]]]]:
    """Per anchor k and term: (positive score, its negative scores), read off the SPEC formulas."""
    m = len(q)
    out: dict[str, list[tuple[float, list[float]]]] = {"P": [], "IQ": [], "I": []}
    for k in range(m):
        positive = _s(q[k], p[k])
        # l_P: the SPEC's sum over all j of e^{s(e_k, p_j)}; j = k is the numerator itself.
        out["P"].append((positive, [_s(q[k], p[j]) for j in range(m) if j != k]))
        # l_IQ: sum over all j of e^{s(p_k, e_j)}; j = k is s(p_k, e_k) = the positive.
        out["IQ"].append((positive, [_s(p[k], q[j]) for j in range(m) if j != k]))
        out["I"].append((positive, [_s(swaps[k][j], p[k]) for j in range(len(swaps[k])) if mask[k][j]]))
    return out


def _nll(positive: float, negatives: list[float]) -> float:
    return -math.log(math.exp(positive) / (math.exp(positive) + sum(math.exp(n) for n in negatives)))


def direct_objective(name: str, q, p, swaps, mask) -> float:
    mode, terms = name.split(":")
    terms = terms.split(",")
    per_term = _direct_terms(q, p, swaps, mask)
    m = len(q)
    if mode == "multi":
        return sum(sum(_nll(*per_term[t][k]) for k in range(m)) / m for t in terms)
    total = 0.0
    for k in range(m):
        positive = per_term["P"][k][0]
        negatives = [n for t in terms for n in per_term[t][k][1]]
        total += _nll(positive, negatives)
    return total / m


@pytest.fixture
def fixed_embeddings():
    """M = 4 pairs, d = 6, S = 3 swaps with some slots masked; float64 so the loops compare tightly."""
    generator = torch.Generator().manual_seed(7)
    m, s, d = 4, 3, 6
    q = F.normalize(torch.randn(m, d, generator=generator, dtype=torch.float64), dim=-1)
    p = F.normalize(q + 0.8 * torch.randn(m, d, generator=generator, dtype=torch.float64), dim=-1)
    swaps = F.normalize(torch.randn(m, s, d, generator=generator, dtype=torch.float64), dim=-1)
    mask = torch.tensor([[True, True, True], [True, False, True], [False, False, False], [True, True, False]])
    return q, p, swaps, mask


# --- names ---------------------------------------------------------------------------------------------


def test_eleven_objectives_round_trip_and_default():
    assert len(OBJECTIVES) == len(set(OBJECTIVES)) == 11
    assert DEFAULT_OBJECTIVE == "multi:P,I"
    for name in OBJECTIVES:
        assert parse_objective(name).name == name
    assert parse_objective("multi: I, P") == Objective("multi", frozenset({"P", "I"}))
    assert parse_objective(" uni : iq , i , p ").name == "uni:P,I,IQ"


@pytest.mark.parametrize("bad", ["multi:P", "multi:I", "uni:", "P,I", "both:P,I", "uni:P,X", ""])
def test_unknown_objective_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match="expected one of uni:P, uni:IQ, uni:I, "):
        parse_objective(bad)


# --- the formulas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_equals_direct_formula(name, fixed_embeddings):
    q, p, swaps, mask = fixed_embeddings
    expected = direct_objective(name, q, p, swaps, mask)
    got = objective_loss(parse_objective(name), q, p, swaps, mask, TAU)
    assert got.ndim == 0
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_single_term_uni_equals_its_base_term_and_multi_exceeds_uni(fixed_embeddings):
    q, p, swaps, mask = fixed_embeddings

    def loss(name):
        return objective_loss(name, q, p, swaps, mask, TAU).item()

    base = {"P": loss("uni:P"), "IQ": loss("uni:IQ"), "I": loss("uni:I")}
    assert loss("multi:P,I") == pytest.approx(base["P"] + base["I"], rel=1e-12)
    assert loss("multi:P,I,IQ") == pytest.approx(sum(base.values()), rel=1e-12)
    # One softmax over the union is strictly below the sum of separately normalised terms, and at
    # least each term alone (more candidates in its denominator).
    for terms in ("P,IQ", "P,I", "I,IQ", "P,I,IQ"):
        uni, multi = loss(f"uni:{terms}"), loss(f"multi:{terms}")
        assert uni < multi
        assert all(uni >= base[t] - 1e-12 for t in terms.split(","))


def test_positive_counted_once_in_uni():
    """With a single pair every candidate set is just the positive: a loss of exactly 0, not log 2/log 3."""
    e = F.normalize(torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64), dim=-1)
    passage = F.normalize(torch.tensor([[0.3, 1.0, -0.2]], dtype=torch.float64), dim=-1)
    no_real_swap = e.unsqueeze(1)  # a "swap" equal to the anchor, masked as the sampler would
    for name in OBJECTIVES:
        value = objective_loss(name, e, passage, no_real_swap, torch.tensor([[False]]), TAU)
        assert value.item() == pytest.approx(0.0, abs=1e-12), name


def test_masked_swaps_do_not_count(fixed_embeddings):
    q, p, swaps, mask = fixed_embeddings
    reference = objective_loss("uni:P,I,IQ", q, p, swaps, mask, TAU)
    # Put the anchor itself into every masked slot: it must change nothing.
    poisoned = swaps.clone()
    poisoned[~mask] = q.unsqueeze(1).expand_as(swaps)[~mask]
    assert torch.equal(objective_loss("uni:P,I,IQ", q, p, poisoned, mask, TAU), reference)
    # No swaps at all: l_I = 0, so multi:P,I is l_P.
    assert objective_loss("multi:P,I", q, p, None, None, TAU) == objective_loss(
        "uni:P", q, p, None, None, TAU
    )


def test_objective_loss_rejects_bad_shapes(fixed_embeddings):
    q, p, swaps, mask = fixed_embeddings
    with pytest.raises(ValueError, match="swap_mask"):
        objective_loss("uni:I", q, p, swaps, mask[:, :2], TAU)
    with pytest.raises(ValueError, match=r"\[M, d\]"):
        objective_loss("uni:P", q, p[:3], None, None, TAU)
    with pytest.raises(ValueError, match="temperature"):
        objective_loss("uni:P", q, p, None, None, 0.0)


# --- InstructionLoss on a tiny encoder ---------------------------------------------------------------


@pytest.fixture
def tiny_model(tiny_encoder_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    torch.manual_seed(0)
    transformer = Transformer(str(tiny_encoder_path), max_seq_length=64)
    return SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu")


def _batch(rows) -> dict[str, list[str]]:
    return {field: [getattr(row, field) for row in rows] for field in INF_FIELDS}


def test_loss_scores_the_three_pairs_of_each_row(tiny_model, inf_rows):
    """uni:P from the loss equals l_P on embeddings that model.encode gives for the SPEC's pairs."""
    tiny_model.eval()
    rows = inf_rows[:2]
    queries, passages = [], []
    for r in rows:
        queries += [
            f"{r.query_positive} {r.instruction_positive}",
            f"{r.query_positive} {r.instruction_negative}",
            f"{r.query_negative} {r.instruction_positive}",
        ]
        passages += [r.document_positive, r.hard_negative_document_1, r.hard_negative_document_2]
    q = torch.from_numpy(tiny_model.encode(queries, normalize_embeddings=True)).double()
    p = torch.from_numpy(tiny_model.encode(passages, normalize_embeddings=True)).double()
    expected = direct_objective("uni:P", q, p, [[] for _ in queries], [[] for _ in queries])
    with torch.no_grad():
        got = InstructionLoss(tiny_model, "uni:P")(_batch(rows))
    assert got.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_gradients_reach_the_encoder(name, tiny_model, inf_rows):
    tiny_model.train()
    loss = InstructionLoss(tiny_model, name)(_batch(inf_rows[:2]))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    bert = tiny_model[0].model
    for parameter in (bert.embeddings.word_embeddings.weight, bert.encoder.layer[-1].output.dense.weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_blank_instructions_reduce_multi_p_i_to_l_p(tiny_model, inf_rows):
    tiny_model.eval()
    batch = _batch(inf_rows[:4])
    batch["instruction_positive"] = [""] * 4
    batch["instruction_negative"] = [""] * 4
    paper = InstructionLoss(tiny_model, "multi:P,I")(batch)
    l_p = InstructionLoss(tiny_model, "uni:P")(batch)
    assert torch.isfinite(paper)
    assert paper.item() == pytest.approx(l_p.item(), rel=1e-6)
    paper.backward()
    assert all(torch.isfinite(p.grad).all() for p in tiny_model.parameters() if p.grad is not None)


def test_query_encoder_sees_queries_and_instructions_apart(tiny_model, inf_rows):
    """Query sides and new swap texts go to the query encoder as (query, instruction) lists, each once."""
    calls: list[tuple[list[str], list[str]]] = []
    loss_fn = InstructionLoss(tiny_model, "multi:P,I", num_swaps=2)

    def query_encoder(queries: list[str], instructions: list[str]) -> torch.Tensor:
        calls.append((queries, instructions))
        return loss_fn.encode([f"{i} || {q}" for q, i in zip(queries, instructions, strict=True)])

    loss_fn.query_encoder = query_encoder
    batch = _batch(inf_rows[:2])
    loss = loss_fn(batch)
    assert torch.isfinite(loss)
    queries, instructions, _ = pairs_from_batch(batch)
    anchors = list(zip(queries, instructions, strict=True))
    seen = [pair for qs, ins in calls for pair in zip(qs, ins, strict=True)]
    swaps = [pair for pair in seen if pair not in anchors]
    assert sorted(set(seen) & set(anchors)) == sorted(set(anchors)) and len(seen) == len(set(seen))
    assert swaps and all(q in queries and i in instructions for q, i in swaps)


def test_length_buckets_sort_longest_first_and_bound_padding():
    lengths = [5, 40, 12, 40, 3, 100]
    order, ranges = length_buckets(lengths, 100)
    assert order == [5, 1, 3, 2, 0, 4]  # longest first, ties in input order
    assert ranges[0] == (0, 1)  # a text at the bound fills a bucket alone
    assert [i for begin, end in ranges for i in order[begin:end]] == order
    for begin, end in ranges:
        assert (end - begin) * lengths[order[begin]] <= 100
    assert length_buckets(lengths, None) == (order, [(0, 6)])
    assert length_buckets([], 100) == ([], [])


def _loss_and_grads(model, batch, **options):
    model.zero_grad(set_to_none=True)
    loss = InstructionLoss(model, "multi:P,I", **options)(batch)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_bucketing_changes_neither_loss_nor_gradients(tiny_model, inf_rows):
    """Small buckets (several encoder calls per column, reordered) against one call per column."""
    tiny_model.eval()
    batch = _batch(inf_rows[:4])
    one_call = _loss_and_grads(tiny_model, batch, bucket_tokens=None)
    bucketed = _loss_and_grads(tiny_model, batch, bucket_tokens=64)
    assert bucketed[0] == pytest.approx(one_call[0], rel=1e-6)
    assert bucketed[1].keys() == one_call[1].keys()
    for name, grad in one_call[1].items():
        assert (bucketed[1][name] - grad).norm() <= 1e-5 * grad.norm() + 1e-7, name


def test_swaps_without_gradient_keep_the_loss_and_drop_only_their_gradient(tiny_model, inf_rows):
    tiny_model.eval()
    batch = _batch(inf_rows[:4])
    full_loss, full_grads = _loss_and_grads(tiny_model, batch)
    fixed_loss, fixed_grads = _loss_and_grads(tiny_model, batch, swap_gradients=False)
    assert fixed_loss == pytest.approx(full_loss, rel=1e-6)
    assert fixed_grads.keys() == full_grads.keys()
    assert any(not torch.allclose(fixed_grads[name], grad) for name, grad in full_grads.items())
    # The cached path computes the same stop-gradient objective.
    cached_loss, cached_grads = _loss_and_grads(tiny_model, batch, swap_gradients=False, mini_batch_size=5)
    assert cached_loss == pytest.approx(fixed_loss, rel=1e-5)
    for name, grad in fixed_grads.items():
        assert (cached_grads[name] - grad).norm() <= 1e-4 * grad.norm() + 1e-7, name


def test_missing_field_is_named(tiny_model, inf_rows):
    batch = _batch(inf_rows[:2])
    del batch["hard_negative_document_2"]
    with pytest.raises(KeyError, match="hard_negative_document_2"):
        InstructionLoss(tiny_model)(batch)
