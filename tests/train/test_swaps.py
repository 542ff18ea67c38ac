"""Instruction swaps: never the anchor's own text, de-duplicated, the paper's count, reproducible."""

from __future__ import annotations

import random

import pytest

from infir.data.records import INF_FIELDS
from infir.data.text import query_text
from infir.train.losses import pairs_from_batch
from infir.train.swaps import default_num_swaps, sample_swaps


def test_default_count_is_half_the_pairs_minus_one():
    assert default_num_swaps(12) == 5  # the paper: 4 rows per device -> M = 12 pairs, 5 swaps
    assert default_num_swaps(96) == 47
    assert default_num_swaps(6) == 2
    assert default_num_swaps(3) == 0
    assert default_num_swaps(0) == 0


def _check_plan(queries, instructions, num_swaps, plan, text_format="concat"):
    """Brute-force the valid candidates of each anchor and compare with what the plan drew."""
    m = len(queries)
    anchors = [query_text(q, i, text_format) for q, i in zip(queries, instructions, strict=True)]
    drawn = plan.anchor_swap_texts(anchors)
    assert plan.index.shape == plan.mask.shape == (m, num_swaps)
    assert len(set(plan.texts)) == len(plan.texts)
    assert not set(plan.texts) & set(anchors)  # a swap that is some pair's text reuses its embedding
    for k in range(m):
        valid = {query_text(queries[k], instructions[j], text_format) for j in range(m) if j != k} - {
            anchors[k]
        }
        assert anchors[k] not in drawn[k]
        assert len(drawn[k]) == len(set(drawn[k])) == min(num_swaps, len(valid))
        assert set(drawn[k]) <= valid
        # the real slots come first; the rest is padding
        assert plan.mask[k].tolist() == [True] * len(drawn[k]) + [False] * (num_swaps - len(drawn[k]))


def test_swaps_on_real_rows_use_the_paper_count(inf_rows):
    batch = {field: [getattr(row, field) for row in inf_rows[:4]] for field in INF_FIELDS}
    queries, instructions, _ = pairs_from_batch(batch)
    plan = sample_swaps(queries, instructions, rng=random.Random(0))
    assert plan.num_swaps == 5
    assert plan.mask.all()  # 7 distinct other instructions per anchor: always enough
    _check_plan(queries, instructions, 5, plan)


@pytest.mark.parametrize("text_format", ["concat", "reversed"])
def test_swaps_never_reproduce_the_anchor_on_random_batches(text_format):
    """Tiny vocabularies force collisions: siblings sharing I+/Q+, the same instruction in several rows,
    whitespace variants and blank instructions."""
    rng = random.Random(1234)
    query_pool = ["q1", "q2", "q3", "q1 ", "a b"]
    instruction_pool = ["i1", "i2", " i1", "", "b i1", "i3"]
    for trial in range(300):
        rows = rng.randint(1, 5)
        queries, instructions = [], []
        for _ in range(rows):
            q_pos, q_neg = rng.choice(query_pool), rng.choice(query_pool)
            i_pos, i_neg = rng.choice(instruction_pool), rng.choice(instruction_pool)
            queries += [q_pos, q_pos, q_neg]
            instructions += [i_pos, i_neg, i_pos]
        num_swaps = rng.choice([None, 0, 1, 3, 50])
        plan = sample_swaps(queries, instructions, num_swaps, random.Random(trial), text_format)
        expected_count = default_num_swaps(len(queries)) if num_swaps is None else num_swaps
        _check_plan(queries, instructions, expected_count, plan, text_format)


def test_blank_instructions_leave_no_swap():
    queries = ["a", "a", "b", "c", "c", "d"]
    plan = sample_swaps(queries, [""] * 6, rng=random.Random(0))
    assert plan.num_swaps == 2 and not plan.mask.any() and plan.texts == []


def test_same_seed_same_draw():
    queries = [f"q{k // 3}" for k in range(24)]
    instructions = [f"i{k}" for k in range(24)]
    first = sample_swaps(queries, instructions, rng=random.Random(5))
    again = sample_swaps(queries, instructions, rng=random.Random(5))
    other = sample_swaps(queries, instructions, rng=random.Random(6))
    assert first.texts == again.texts and first.index.equal(again.index)
    assert not first.index.equal(other.index)


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 queries but 1 instructions"):
        sample_swaps(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="num_swaps"):
        sample_swaps(["a"], ["x"], num_swaps=-1)
