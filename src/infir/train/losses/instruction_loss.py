"""InstructionLoss: the paper's objectives over InF-IR rows, with optional gradient caching."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses import CachedLossMixin, RandContext
from torch import Tensor, nn

from infir.data.records import INF_FIELDS
from infir.data.text import TEXT_FORMATS, TextFormat, query_text
from infir.train.losses.objectives import DEFAULT_OBJECTIVE, parse_objective
from infir.train.losses.terms import objective_loss
from infir.train.swaps import SwapPlan, sample_swaps

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

QueryEncoder = Callable[[list[str], list[str]], Tensor]


# Texts of one step are encoded in buckets of similar token length holding at most this many padded
# tokens: query sides, swaps and passages differ in length, and on CPU every padding token costs as
# much as a real one. Measured in bench/train_throughput.py (MiniLM, 2 cores).
DEFAULT_BUCKET_TOKENS = 1024


@dataclass(frozen=True)
class _Column:
    """One list of texts encoded together: passages, or query sides (query + instruction kept apart so a
    query encoder can see them separately)."""

    texts: list[str]
    queries: list[str] | None = None
    instructions: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, order: Sequence[int]) -> _Column:
        """The column's texts in ``order``."""

        def pick(values: list[str] | None) -> list[str] | None:
            return None if values is None else [values[i] for i in order]

        return _Column(pick(self.texts), pick(self.queries), pick(self.instructions))


@dataclass(frozen=True)
class _StepLayout:
    """What the cached path's ``calculate_loss`` needs besides the embeddings (it rides in ``labels``).

    Attributes:
        plan: the step's swap plan (None when the objective has no I term).
        restore: per encoded column, the index that puts its length-sorted embeddings back in order.
        fixed_swaps: embeddings of the new swap texts computed without gradient (``swap_gradients=False``).
    """

    plan: SwapPlan | None
    restore: list[Tensor]
    fixed_swaps: Tensor | None = None


def length_buckets(lengths: Sequence[int], max_tokens: int | None) -> tuple[list[int], list[tuple[int, int]]]:
    """Order texts longest first and cut that order into buckets of at most ``max_tokens`` padded tokens.

    Args:
        lengths: token count of each text.
        max_tokens: bound on (texts in a bucket) × (longest text of the bucket); a longer text still gets
            a bucket of its own. None -> one bucket.

    Returns:
        ``order`` (text indices, longest first; ties keep their input order) and the ``[begin, end)``
        ranges of the buckets over ``order``.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if not order:
        return order, []
    if max_tokens is None:
        return order, [(0, len(order))]
    ranges: list[tuple[int, int]] = []
    begin = 0
    for end in range(1, len(order) + 1):
        # Sorted longest first: the bucket's first text sets its padded length.
        if end == len(order) or (end + 1 - begin) * lengths[order[begin]] > max_tokens:
            ranges.append((begin, end))
            begin = end
    return order, ranges


def _inverse(order: Sequence[int]) -> Tensor:
    """The index that maps rows stored in ``order`` back to their original positions."""
    restore = torch.empty(len(order), dtype=torch.long)
    restore[torch.tensor(list(order), dtype=torch.long)] = torch.arange(len(order))
    return restore


def pairs_from_batch(batch: dict[str, Sequence[str]]) -> tuple[list[str], list[str], list[str]]:
    """The M = 3B (query, instruction, passage) pairs of B InF-IR rows, pair 3b + t for row b (SPEC §4):
    t = 0: (Q+, I+, P+), t = 1: (Q+, I−, HN1), t = 2: (Q−, I+, HN2)."""
    missing = [field for field in INF_FIELDS if field not in batch]
    if missing:
        raise KeyError(f"batch lacks InF-IR field(s) {', '.join(missing)}; it has {', '.join(batch)}")
    sizes = {field: len(batch[field]) for field in INF_FIELDS}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"batch fields differ in length: {sizes}")
    queries: list[str] = []
    instructions: list[str] = []
    passages: list[str] = []
    for q_pos, i_pos, p_pos, i_neg, q_neg, hn1, hn2 in zip(
        *(batch[field] for field in INF_FIELDS), strict=True
    ):
        queries += [q_pos, q_pos, q_neg]
        instructions += [i_pos, i_neg, i_pos]
        passages += [p_pos, hn1, hn2]
    return queries, instructions, passages


def _unwrap(model: nn.Module) -> nn.Module:
    """The SentenceTransformer behind DDP / compile wrappers (the trainer may put one in ``loss.model``)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


class InstructionLoss(CachedLossMixin, nn.Module):
    def __init__(
        self,
        model: SentenceTransformer,
        objective: str = DEFAULT_OBJECTIVE,
        temperature: float = 0.05,
        num_swaps: int | None = None,
        text_format: TextFormat = "concat",
        mini_batch_size: int | None = None,
        seed: int = 0,
        query_encoder: QueryEncoder | None = None,
        bucket_tokens: int | None = DEFAULT_BUCKET_TOKENS,
        swap_gradients: bool = True,
    ) -> None:
        """The InF-Embed training loss: each InF-IR row gives the pairs ("Q+ I+", P+), ("Q+ I−", HN1),
        ("Q− I+", HN2); the batch's M = 3B pairs are scored by one of the paper's 11 objectives
        (see :mod:`infir.train.losses.terms` for the exact candidate sets of l_P, l_IQ, l_I and of the
        uni / multi combinations), with instruction swaps drawn per batch for the I term.

        Args:
            model: the SentenceTransformer encoding query sides, passages and swaps (one shared encoder).
            objective: one of :data:`OBJECTIVES`, e.g. ``"multi:P,I"`` (the paper's best, the default).
            temperature: τ in s(a, b) = aᵀb / τ on L2-normalised embeddings (paper: 0.05).
            num_swaps: instruction swaps per anchor; None -> the paper's M/2 − 1. Fewer valid candidates
                (e.g. blank instructions) -> the rest are masked; no swaps at all -> l_I = 0.
            text_format: how query and instruction are joined (``infir.data.text.query_text``).
            mini_batch_size: None for plain back-propagation; an int turns on gradient caching
                (GradCache, as in sentence-transformers' Cached losses): texts are embedded in
                no-grad mini-batches of this size, the loss is back-propagated to the embeddings, and
                each mini-batch is re-embedded with grad (same RNG state) to push those gradients into
                the model. Same loss and gradients, memory of one mini-batch.
            seed: seed of the swap sampler, so a run draws the same swaps again.
            query_encoder: encodes (queries, instructions) to [n, d] query-side embeddings instead of
                ``encode(query_text(...))`` (the instruction–query attention encoder). An ``nn.Module``
                becomes a submodule of this loss, whose parameters the sentence-transformers trainer
                optimises along with the model's.
            bucket_tokens: speed only, the loss and gradients are the same: the query sides with their
                swaps, and the passages, are each sorted by token length and encoded in buckets of at
                most this many padded tokens (less padding; on CPU a padding token costs as much as a
                real one). None -> each list in one call. With ``mini_batch_size`` the sorted lists are
                cut into its mini-batches instead.
            swap_gradients: True (the paper's objective) back-propagates l_I through the swap
                embeddings e_{k,j}. False is an opt-in approximation: swap texts that are not some
                pair's query side are encoded without gradient (a stop-gradient on the l_I negatives,
                as MoCo treats its queue), so each costs one forward pass instead of forward and
                backward. The loss value is unchanged; its gradient reaches the encoder through e_k,
                p_k and the in-batch negatives only.

        Inputs:
            +-------------------------------------------------------------+--------+
            | Inputs                                                      | Labels |
            +=============================================================+========+
            | dict of the 7 InF-IR fields (``INF_FIELDS``) -> B strings   | none   |
            +-------------------------------------------------------------+--------+

        Recommendations:
            - The paper trains 4 rows per device × 8 GPUs (M = 96 pairs); on one device, reach such a
              batch with ``mini_batch_size`` rather than with gradient accumulation, which would shrink
              the pool of in-batch negatives and swaps.
            - Blank instructions (the no-instruction baseline) leave no swap distinct from the anchor,
              so ``multi:P,I`` trains exactly l_P.
        """
        super().__init__()
        if text_format not in TEXT_FORMATS:
            raise ValueError(f"unknown text format {text_format!r}; expected one of {TEXT_FORMATS}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if num_swaps is not None and num_swaps < 0:
            raise ValueError(f"num_swaps must be >= 0 or None, got {num_swaps}")
        if mini_batch_size is not None and mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1 or None, got {mini_batch_size}")
        if bucket_tokens is not None and bucket_tokens < 1:
            raise ValueError(f"bucket_tokens must be >= 1 or None, got {bucket_tokens}")
        self.model = model
        self.objective = parse_objective(objective)
        self.temperature = temperature
        self.num_swaps = num_swaps
        self.text_format = text_format
        self.mini_batch_size = mini_batch_size
        self.uses_gradient_cache = mini_batch_size is not None
        self.seed = seed
        self.query_encoder = query_encoder
        self.bucket_tokens = bucket_tokens
        self.swap_gradients = swap_gradients
        self._rng = random.Random(seed)

    def encode(self, texts: list[str]) -> Tensor:
        """[n, d] L2-normalised embeddings of ``texts``, with grad, through the model's own preprocessing."""
        module = _unwrap(self.model)
        features = module.preprocess(list(texts))
        features = {k: v.to(module.device) if isinstance(v, Tensor) else v for k, v in features.items()}
        return F.normalize(self.model(features)["sentence_embedding"], dim=-1)

    def forward(self, batch: dict[str, list[str]]) -> Tensor:
        """The scalar loss of a batch of B InF-IR rows (keys: ``INF_FIELDS``, values: lists of B strings)."""
        queries, instructions, passages = pairs_from_batch(batch)
        if not queries:
            raise ValueError("empty batch: InstructionLoss needs at least one InF-IR row")
        plan = None
        if "I" in self.objective.terms:
            plan = sample_swaps(queries, instructions, self.num_swaps, self._rng, self.text_format)
        # Two encoded columns, each with its own max length: the query sides followed by the new swap
        # texts (together they are the swap table [query sides; new swaps]), and the passages.
        query_column = self._query_column(queries, instructions)
        swap_column = None
        if plan is not None and plan.texts:
            swap_column = self._query_column(plan.queries, plan.instructions)
            if self.swap_gradients:
                query_column = _Column(
                    query_column.texts + swap_column.texts,
                    query_column.queries + swap_column.queries,
                    query_column.instructions + swap_column.instructions,
                )
                swap_column = None
        columns = [query_column, _Column(list(passages))]
        fixed_swaps = None
        if swap_column is not None:
            with torch.no_grad():
                fixed_swaps = self._encode_sorted(swap_column)
        if self.mini_batch_size is None:
            return self._loss_from_embeddings([self._encode_sorted(c) for c in columns], plan, fixed_swaps)
        # The cached path (CachedLossMixin.forward_cached) calls back into embed_minibatch and
        # calculate_loss; it cuts each length-sorted column into mini-batches and passes `labels` (here
        # the swap plan and how to undo the sorting) through untouched.
        orders = [length_buckets(self._token_lengths(c.texts), None)[0] for c in columns]
        features = [
            {"rows": torch.arange(len(column)), "column": column.take(order)}
            for column, order in zip(columns, orders, strict=True)
        ]
        layout = _StepLayout(plan, [_inverse(order) for order in orders], fixed_swaps)
        return self.forward_cached(features, layout)

    def _query_column(self, queries: list[str], instructions: list[str]) -> _Column:
        texts = [query_text(q, i, self.text_format) for q, i in zip(queries, instructions, strict=True)]
        return _Column(texts, list(queries), list(instructions))

    def _token_lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text (capped at the model's max length), or its character count for a model
        whose first module has no tokenizer; only the order and the bucket sizes depend on it."""
        module = _unwrap(self.model)
        tokenizer = getattr(module[0], "tokenizer", None)
        if tokenizer is None:
            return [len(text) for text in texts]
        ids = tokenizer(texts, truncation=True, max_length=module.max_seq_length)["input_ids"]
        return [len(row) for row in ids]

    def _encode_sorted(self, column: _Column) -> Tensor:
        """The column's embeddings in its own order, encoded in length-sorted buckets (``bucket_tokens``)."""
        if not len(column):
            raise ValueError("nothing to encode")
        order, ranges = length_buckets(self._token_lengths(column.texts), self.bucket_tokens)
        ordered = column.take(order)
        embeddings = torch.cat([self._encode_column(ordered, begin, end) for begin, end in ranges])
        return embeddings[_inverse(order).to(embeddings.device)]

    def _encode_column(self, column: _Column, begin: int, end: int) -> Tensor:
        if self.query_encoder is not None and column.queries is not None:
            embeddings = self.query_encoder(column.queries[begin:end], column.instructions[begin:end])
            return F.normalize(embeddings, dim=-1)
        return self.encode(column.texts[begin:end])

    def _loss_from_embeddings(
        self, embeddings: list[Tensor], plan: SwapPlan | None, fixed_swaps: Tensor | None = None
    ) -> Tensor:
        """``embeddings``: [query sides (+ new swaps); passages] in pair order; ``fixed_swaps``: the new
        swaps' embeddings when they were computed apart, without gradient."""
        num_pairs = embeddings[1].shape[0]
        query_emb, passage_emb = embeddings[0][:num_pairs], embeddings[1]
        swap_emb = swap_mask = None
        if plan is not None and plan.num_swaps > 0:
            # Swap slots index [query sides; new swaps]: a swap that is some pair's text reuses it.
            table = embeddings[0] if fixed_swaps is None else torch.cat([embeddings[0], fixed_swaps])
            swap_emb = table[plan.index.to(table.device)]
            swap_mask = plan.mask.to(table.device)
        return objective_loss(self.objective, query_emb, passage_emb, swap_emb, swap_mask, self.temperature)

    # --- gradient caching: the two hooks CachedLossMixin.forward_cached calls -------------------------

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: _StepLayout | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the per-mini-batch embeddings of each length-sorted column; ``labels`` is the
        step's layout (swap plan, sort order)."""
        if labels is None:
            raise ValueError("calculate_loss needs the step layout that InstructionLoss.forward passes")
        embeddings = [
            torch.cat(column)[restore.to(column[0].device)]
            for column, restore in zip(reps, labels.restore, strict=True)
        ]
        loss = self._loss_from_embeddings(embeddings, labels.plan, labels.fixed_swaps)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, RandContext | None]:
        """Embed rows [begin, end) of one column; snapshot (first pass) or replay (second pass) the RNG."""
        grad_context = nullcontext if with_grad else torch.no_grad
        with random_state if random_state is not None else nullcontext(), grad_context():
            device_probe = torch.empty(0, device=_unwrap(self.model).device)
            new_state = RandContext(device_probe) if copy_random_state else None
            reps = self._encode_column(sentence_feature["column"], begin, end)
        return reps, new_state

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective.name,
            "temperature": self.temperature,
            "num_swaps": self.num_swaps,
            "text_format": self.text_format,
            "mini_batch_size": self.mini_batch_size,
            "seed": self.seed,
            "query_encoder": self.query_encoder is not None,
            "bucket_tokens": self.bucket_tokens,
            "swap_gradients": self.swap_gradients,
        }

    @property
    def citation(self) -> str:
        return """
@article{zhuang2025towards,
    title={Towards Better Instruction Following Retrieval Models},
    author={Zhuang and others},
    journal={arXiv preprint arXiv:2505.21439},
    year={2025}
}
"""
