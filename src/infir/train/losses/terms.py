"""The base terms l_P, l_IQ, l_I and their uni / multi combinations, on embeddings alone (SPEC §4).

Every term is an InfoNCE around the same positive pair score s(e_k, p_k) = e_kᵀp_k / τ and differs only
in its candidate set (the "negatives" below; a masked candidate is a logit of -inf):

- P  (query side -> all passages):   s(e_k, p_j)      for j ≠ k
- IQ (passage -> all query sides):   s(p_k, e_j)      for j ≠ k   (its k-th term IS the positive)
- I  (passage -> instruction swaps): s(e_{k,j}, p_k)  for j ∈ J_k (padding and self-swaps masked)

So l_X = −log e^{pos} / (e^{pos} + Σ_{n ∈ negatives_X} e^{n}), which is exactly the SPEC formula of each
term (for P and IQ the positive is the j = k term of the SPEC's sum). A ``uni`` objective puts the
negatives of all its named terms in ONE softmax with the positive counted once; a ``multi`` objective
sums the separately normalised terms. Hence uni:P = l_P, uni:IQ = l_IQ and uni:I = l_I exactly; the
combinations differ.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infir.train.losses.objectives import TERMS, Objective, parse_objective


def pair_scores(query_emb: Tensor, passage_emb: Tensor, temperature: float) -> Tensor:
    """[M, M] matrix of s(e_k, p_j) = e_kᵀp_j / τ (row k = query side k, column j = passage j)."""
    return query_emb @ passage_emb.T / temperature


def swap_scores(passage_emb: Tensor, swap_emb: Tensor, swap_mask: Tensor, temperature: float) -> Tensor:
    """[M, S] matrix of s(e_{k,j}, p_k), -inf where ``swap_mask`` is False (padding or excluded swap)."""
    scores = torch.einsum("ksd,kd->ks", swap_emb, passage_emb) / temperature
    return scores.masked_fill(~swap_mask, float("-inf"))


def _off_diagonal(scores: Tensor) -> Tensor:
    """The square score matrix with its diagonal (the positive pairs) masked to -inf."""
    eye = torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    return scores.masked_fill(eye, float("-inf"))


def info_nce(positive: Tensor, negatives: list[Tensor]) -> Tensor:
    """Per-anchor −log e^{pos} / (e^{pos} + Σ e^{neg}) for [M] positives and a list of [M, n] negatives."""
    logits = torch.cat([positive.unsqueeze(1), *negatives], dim=1)
    return torch.logsumexp(logits, dim=1) - positive


def term_negatives(
    query_emb: Tensor,
    passage_emb: Tensor,
    swap_emb: Tensor | None,
    swap_mask: Tensor | None,
    temperature: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The positive scores [M] and each term's negatives (name -> [M, n], masked entries -inf)."""
    if query_emb.shape != passage_emb.shape or query_emb.ndim != 2:
        raise ValueError(
            f"query_emb and passage_emb must both be [M, d]; got {tuple(query_emb.shape)} and "
            f"{tuple(passage_emb.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    scores = pair_scores(query_emb, passage_emb, temperature)
    negatives = {"P": _off_diagonal(scores), "IQ": _off_diagonal(scores.T)}
    if swap_emb is None or swap_emb.shape[1] == 0:
        # No swaps at all (e.g. blank instructions): the I term's softmax holds only the positive.
        negatives["I"] = scores.new_empty((scores.shape[0], 0))
    else:
        if (
            swap_emb.ndim != 3
            or swap_emb.shape[0] != query_emb.shape[0]
            or swap_emb.shape[2] != query_emb.shape[1]
        ):
            raise ValueError(f"swap_emb must be [M, S, d]; got {tuple(swap_emb.shape)}")
        if swap_mask is None:
            swap_mask = torch.ones(swap_emb.shape[:2], dtype=torch.bool, device=swap_emb.device)
        if swap_mask.shape != swap_emb.shape[:2]:
            raise ValueError(
                f"swap_mask must be [M, S] = {tuple(swap_emb.shape[:2])}; got {tuple(swap_mask.shape)}"
            )
        negatives["I"] = swap_scores(passage_emb, swap_emb, swap_mask.bool(), temperature)
    return scores.diagonal(), negatives


def objective_loss(
    objective: Objective | str,
    query_emb: Tensor,
    passage_emb: Tensor,
    swap_emb: Tensor | None,
    swap_mask: Tensor | None,
    temperature: float = 0.05,
) -> Tensor:
    """The scalar loss (mean over anchors k) of one of the 11 objectives.

    Args:
        objective: an :class:`Objective` or its name, e.g. ``"multi:P,I"``.
        query_emb: [M, d] L2-normalised query-side embeddings e_k; row k belongs to pair k.
        passage_emb: [M, d] L2-normalised passage embeddings p_k.
        swap_emb: [M, S, d] swap embeddings e_{k,j} = f(q_k ⊕ i_j), or None when there are no swaps.
        swap_mask: [M, S] bool, True for a real swap (False = padding / excluded); None = all real.
        temperature: τ in s(a, b) = aᵀb / τ.

    Every objective's numerator is the pair score s(e_k, p_k). Denominators (module docstring):
    uni:I = the positive + anchor k's real swaps s(e_{k,j}, p_k); uni:IQ = the positive (which is
    s(p_k, e_k)) + s(p_k, e_j) for the other query sides j ≠ k; uni:P = the positive + s(e_k, p_j),
    j ≠ k. Larger uni sets take the union of these negatives, the positive once.
    """
    objective = parse_objective(objective)
    positive, negatives = term_negatives(query_emb, passage_emb, swap_emb, swap_mask, temperature)
    named = [term for term in TERMS if term in objective.terms]
    if objective.mode == "uni":
        return info_nce(positive, [negatives[term] for term in named]).mean()
    return torch.stack([info_nce(positive, [negatives[term]]).mean() for term in named]).sum()
