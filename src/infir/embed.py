"""Encoding texts with a sentence-transformers model: the one path evaluate and search share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from infir.data.text import TextFormat, query_text

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def encode_passages(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Passages get no prefix (SPEC §3); returns float32 L2-normalised rows."""
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


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
