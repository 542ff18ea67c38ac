import itertools

import numpy as np
import pytest

from infir.evaluate.significance import paired_comparison


def test_exact_permutation_p_value_matches_enumeration():
    a = {f"q{i}": 0.0 for i in range(8)}
    b = {f"q{i}": d for i, d in enumerate([0.3, 0.1, -0.05, 0.2, 0.4, 0.0, 0.25, 0.15])}
    diff = np.array(list(b.values()))
    # All 2^8 sign flips enumerated: the exact two-sided p-value.
    flips = np.array(list(itertools.product([-1, 1], repeat=8)))
    exact = np.mean(np.abs((flips * diff).mean(axis=1)) >= abs(diff.mean()) - 1e-12)
    result = paired_comparison(a, b, resamples=40_000, seed=1)
    assert result.mean_difference == pytest.approx(diff.mean())
    assert result.p_value == pytest.approx(exact, abs=0.01)
    assert result.ci_low < result.mean_difference < result.ci_high
    assert result.n_queries == 8


def test_no_difference_is_not_significant_and_only_common_queries_count():
    a = {"q1": 0.5, "q2": 0.2, "q3": 0.9, "only_a": 1.0}
    b = {"q1": 0.5, "q2": 0.2, "q3": 0.9, "only_b": 0.0}
    result = paired_comparison(a, b)
    assert result.mean_difference == 0.0 and result.p_value == 1.0 and result.n_queries == 3


def test_large_consistent_gain_is_significant():
    rng = np.random.default_rng(0)
    a = {f"q{i}": float(x) for i, x in enumerate(rng.random(60))}
    b = {q: v + 0.2 for q, v in a.items()}
    assert paired_comparison(a, b).p_value < 0.001


def test_disjoint_queries_are_an_error():
    with pytest.raises(ValueError, match="no scored query"):
        paired_comparison({"a": 1.0}, {"b": 1.0})
