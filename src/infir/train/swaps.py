"""Instruction swaps ("marginal sampling", SPEC §4): for anchor k, e_{k,j} = f(q_k ⊕ i_j) with i_j drawn
from the instructions of the OTHER pairs of the batch.

Siblings share I+ (k1, k3) or Q+ (k1, k2), so a drawn instruction can rebuild the anchor's own
query-side text; the paper's code keeps such a swap (a copy of the positive in the denominator), we
drop it. Candidates are de-duplicated by the text they produce, and a swap whose text is already some
pair's query side reuses that pair's embedding instead of being encoded again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from infir.data.text import TextFormat, query_text


def default_num_swaps(num_pairs: int) -> int:
    """The paper's M/2 − 1 swaps per anchor (rounded down, never negative) for a batch of M pairs."""
    return max(num_pairs // 2 - 1, 0)


@dataclass(frozen=True)
class SwapPlan:
    """Which swaps each anchor scores, as indices into the table ``[query sides of the M pairs; new swaps]``.

    Attributes:
        queries, instructions, texts: the swaps that are NOT already a pair's query side, each once (the
            only swaps that need encoding); ``texts[u] = query_text(queries[u], instructions[u])``.
        index: [M, S] long; row k lists anchor k's swaps: ``index < M`` is pair ``index``'s query side,
            ``index >= M`` is new swap ``index - M``. Padding slots hold 0.
        mask: [M, S] bool, True for a real swap, False for padding (an anchor with fewer candidates
            than S).
    """

    queries: list[str]
    instructions: list[str]
    texts: list[str]
    index: Tensor
    mask: Tensor

    @property
    def num_swaps(self) -> int:
        """S, the number of swap slots per anchor."""
        return self.index.shape[1]

    def anchor_swap_texts(self, anchor_texts: Sequence[str]) -> list[list[str]]:
        """The real swap texts of each anchor (for inspection and tests)."""
        table = [*anchor_texts, *self.texts]
        return [
            [table[i] for i, real in zip(row, mask, strict=True) if real]
            for row, mask in zip(self.index.tolist(), self.mask.tolist(), strict=True)
        ]


def sample_swaps(
    queries: Sequence[str],
    instructions: Sequence[str],
    num_swaps: int | None = None,
    rng: random.Random | None = None,
    text_format: TextFormat = "concat",
) -> SwapPlan:
    """Draw up to ``num_swaps`` instruction swaps per pair (default :func:`default_num_swaps`).

    Args:
        queries, instructions: the M pairs' queries and instructions (pair k's query side is
            ``query_text(queries[k], instructions[k], text_format)``).
        num_swaps: swaps per anchor; None -> M/2 − 1. Anchors with fewer valid candidates get all of
            them and the remaining slots are masked.
        rng: the sampler's random generator (seed it for reproducible runs); None -> ``random.Random(0)``.
        text_format: how query and instruction are joined (SPEC §3); also the de-duplication key.
    """
    if len(queries) != len(instructions):
        raise ValueError(f"{len(queries)} queries but {len(instructions)} instructions")
    num_pairs = len(queries)
    num_swaps = default_num_swaps(num_pairs) if num_swaps is None else num_swaps
    if num_swaps < 0:
        raise ValueError(f"num_swaps must be >= 0, got {num_swaps}")
    rng = rng if rng is not None else random.Random(0)

    anchor_texts = [query_text(q, i, text_format) for q, i in zip(queries, instructions, strict=True)]
    table: dict[str, int] = {}
    for k, text in enumerate(anchor_texts):
        table.setdefault(text, k)
    new_queries: list[str] = []
    new_instructions: list[str] = []
    new_texts: list[str] = []

    index = torch.zeros((num_pairs, num_swaps), dtype=torch.long)
    mask = torch.zeros((num_pairs, num_swaps), dtype=torch.bool)
    for k in range(num_pairs):
        # Candidate texts in a fixed (first-seen) order, so one seed gives one draw.
        candidates: dict[str, str] = {}
        for j, instruction in enumerate(instructions):
            if j == k:
                continue
            text = query_text(queries[k], instruction, text_format)
            if text != anchor_texts[k]:
                candidates.setdefault(text, instruction)
        drawn = rng.sample(list(candidates), min(num_swaps, len(candidates)))
        for slot, text in enumerate(drawn):
            if text not in table:
                table[text] = num_pairs + len(new_texts)
                new_queries.append(queries[k])
                new_instructions.append(candidates[text])
                new_texts.append(text)
            index[k, slot] = table[text]
            mask[k, slot] = True
    return SwapPlan(new_queries, new_instructions, new_texts, index, mask)
