"""Is model B really better than model A on these queries? Paired tests over per-query scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    """B − A over the queries both were scored on.

    Attributes:
        mean_difference: mean over queries of score_B − score_A.
        ci_low / ci_high: percentile bootstrap 95% interval of that mean.
        p_value: two-sided paired permutation (sign-flip) test of "no difference".
        n_queries: queries in common.
    """

    mean_difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_queries: int


def paired_comparison(
    scores_a: Mapping[str, float],
    scores_b: Mapping[str, float],
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-query scores of two systems (e.g. p-MRR or nDCG@10 per query).

    Both the bootstrap and the permutation test resample queries, the unit that varies between
    benchmarks; `resamples` draws each, seeded so a report is reproducible.
    """
    common = sorted(set(scores_a) & set(scores_b))
    if not common:
        raise ValueError("the two systems share no scored query")
    diff = np.array([scores_b[q] - scores_a[q] for q in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = diff.size
    observed = diff.mean()

    boot = diff[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    ci_low, ci_high = np.percentile(boot, [2.5, 97.5])

    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, n))
    null = (signs * diff).mean(axis=1)
    # +1 in numerator and denominator: the observed labelling is one of the permutations, so p > 0.
    extreme = np.count_nonzero(np.abs(null) >= abs(observed) - 1e-12)
    p_value = (extreme + 1) / (resamples + 1)
    return PairedComparison(float(observed), float(ci_low), float(ci_high), float(p_value), n)
