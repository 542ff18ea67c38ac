"""Encoding texts with a sentence-transformers model: the one path evaluate and search share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from infir.data.text import TextFormat, query_text

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def token_lengths(model: SentenceTransformer, texts: Sequence[str]) -> list[int]:
    """Each text's token count as the model will see it (special tokens in, truncated to max length)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or not callable(tokenizer):  # a model without a text tokenizer: characters
        return [len(text) for text in texts]
    max_length = model.max_seq_length
    encoded = tokenizer(
        list(texts), add_special_tokens=True, truncation=max_length is not None, max_length=max_length
    )
    return [len(ids) for ids in encoded["input_ids"]]


def encode_passages(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Passages get no prefix (SPEC §3); returns float32 L2-normalised rows, in input order.

    Batches are formed in exact *token*-length order. `SentenceTransformer.encode` sorts by
    *character* length, which on MS MARCO passages pads batches of 64 to 1.40x the real tokens;
    token order pads them to 1.06x (bench/encode_speed.py), and padding is compute thrown away.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, model.get_embedding_dimension() or 0), dtype=np.float32)
    order = np.argsort([-n for n in token_lengths(model, texts)], kind="stable")
    vectors: np.ndarray | None = None
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="Encoding", unit="batch", disable=not show_progress):
        rows = order[start : start + batch_size]
        # One call per batch: the batch is already length-homogeneous, encode only runs it.
        batch = model.encode(
            [texts[i] for i in rows],
            batch_size=len(rows),
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        if vectors is None:
            vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
        vectors[rows] = batch
    return vectors


def encode_queries(
    model: SentenceTransformer,
    queries: Sequence[str],
    instructions: Sequence[str | None] | None = None,
    text_format: TextFormat = "concat",
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Query side = query_text(query, instruction) (SPEC §3); float32 L2-normalised rows."""
    instructions = instructions if instructions is not None else [None] * len(queries)
    if len(instructions) != len(queries):
        raise ValueError(f"{len(queries)} queries but {len(instructions)} instructions")
    texts = [query_text(q, i, text_format) for q, i in zip(queries, instructions, strict=True)]
    return encode_passages(model, texts, batch_size=batch_size, show_progress=show_progress)
