"""Retrievers that turn (query, instruction) pairs into runs: dense (faiss) and lexical (bm25s).

Both share one contract: `index(corpus)` once per benchmark, then `search(...)` returns a run
({qid: {doc_id: score}}). With candidates (FollowIR's `top_ranked`) every candidate of a query is
scored and nothing else; without, the top `k` of the whole corpus are returned.

The query side is always `infir.data.text.query_text(query, instruction, text_format)` (SPEC §3),
so evaluation joins query and instruction exactly as training and search do.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from infir.data.beir import Document
from infir.data.io import atomic_path, write_json_atomic
from infir.data.text import TextFormat, query_text
from infir.embed import encode_passages, encode_queries
from infir.evaluate.metrics import Run
from infir.models import load_model, model_label, model_text_format, resolve_model_name

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

BM25_NAME = "bm25"
DEFAULT_DEPTH = 1000
# Bump when the way passages become vectors changes, so old cache files are never reused.
_CACHE_FORMAT = "infir-corpus-embeddings-v1"


class Retriever(Protocol):
    """What the runner needs from a retriever."""

    label: str
    text_format: TextFormat

    def index(self, corpus: dict[str, Document]) -> None: ...

    def search(
        self,
        query_ids: Sequence[str],
        queries: Sequence[str],
        instructions: Sequence[str | None] | None = None,
        candidates: dict[str, list[str]] | None = None,
        k: int = DEFAULT_DEPTH,
    ) -> Run: ...


def default_cache_dir() -> Path:
    """``$INFIR_CACHE_DIR/embeddings`` when set, else ``~/.cache/infir/embeddings``."""
    root = os.environ.get("INFIR_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "infir") / "embeddings"


def corpus_fingerprint(corpus: dict[str, Document]) -> str:
    """sha256 of every (id, encoded text) pair in corpus order: the rows of the embedding matrix."""
    digest = hashlib.sha256()
    for doc_id, document in corpus.items():
        digest.update(doc_id.encode("utf-8") + b"\0" + document.full_text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def model_fingerprint(name: str | Path | None) -> str:
    """Identity of a model's weights without reading them.

    A local folder: its absolute path plus the name, size and mtime of every file in it (retraining
    into the same folder changes the key). A hub name: the name itself.
    """
    resolved = resolve_model_name(name)
    path = Path(resolved)
    digest = hashlib.sha256()
    if path.is_dir():
        digest.update(str(path.resolve()).encode("utf-8"))
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"\0{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    else:
        digest.update(f"hub:{resolved}".encode())
    return digest.hexdigest()


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores (unordered; the run is a dict, metrics order it)."""
    if k >= scores.shape[0]:
        return np.arange(scores.shape[0])
    return np.argpartition(-scores, k - 1)[:k]


class DenseRetriever:
    """A sentence-transformers model scored by exact inner product (faiss `IndexFlatIP`).

    Embeddings are L2-normalised, so the inner product is the cosine similarity. Corpus embeddings
    are cached on disk under a key made of the model's identity (`model_fingerprint`), the corpus
    content (`corpus_fingerprint`) and the model's max sequence length, so evaluating several
    models on several benchmarks encodes each (model, corpus) pair once, ever.

    Args:
        model_name: a sentence-transformers folder, a hub name, ``default`` (packaged MiniLM) or a
            folder trained by infir (whose `infir_config.json` sets the query text format).
        text_format: how query and instruction are joined; default: the model's own format.
        batch_size: encoding batch size.
        cache_dir: where corpus embeddings live; default `default_cache_dir()`. ``None`` uses the
            default; pass ``use_cache=False`` to never read or write it.
        show_progress: progress bars while encoding.
        device: torch device; default CUDA when available.
        model: an already loaded model for `model_name` (saves loading it twice); the cache key
            still comes from `model_name`.
    """

    def __init__(
        self,
        model_name: str | Path | None = None,
        text_format: TextFormat | None = None,
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress: bool = False,
        device: str | None = None,
        model: SentenceTransformer | None = None,
    ) -> None:
        self.model_name = str(model_name) if model_name is not None else "default"
        self.label = model_label(model_name)
        self.text_format: TextFormat = text_format or model_text_format(model_name)  # type: ignore[assignment]
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.use_cache = use_cache
        self.show_progress = show_progress
        self.model = model if model is not None else load_model(model_name, device=device)
        self._fingerprint = model_fingerprint(model_name)
        self.doc_ids: list[str] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self._index = None
        self.last_index_from_cache = False

    # ------------------------------------------------------------------ corpus
    def cache_path(self, corpus: dict[str, Document]) -> Path:
        key = hashlib.sha256(
            f"{_CACHE_FORMAT}\0{self._fingerprint}\0{corpus_fingerprint(corpus)}\0"
            f"{self.model.max_seq_length}".encode()
        ).hexdigest()
        return self.cache_dir / f"{key[:32]}.npy"

    def _load_cached(self, path: Path, n_docs: int) -> np.ndarray | None:
        if not (self.use_cache and path.is_file()):
            return None
        try:
            vectors = np.load(path)
        except (OSError, ValueError) as exc:  # a damaged file is re-encoded, not trusted
            logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)
            return None
        if vectors.ndim != 2 or vectors.shape[0] != n_docs:
            logger.warning(
                "ignoring embedding cache %s: shape %s for %d documents", path, vectors.shape, n_docs
            )
            return None
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def index(self, corpus: dict[str, Document]) -> None:
        """Embed the corpus (or load its cached embeddings) and build the faiss index."""
        import faiss

        path = self.cache_path(corpus)
        vectors = self._load_cached(path, len(corpus))
        self.last_index_from_cache = vectors is not None
        if vectors is None:
            texts = [document.full_text for document in corpus.values()]
            vectors = encode_passages(
                self.model, texts, batch_size=self.batch_size, show_progress=self.show_progress
            )
            if self.use_cache:
                with atomic_path(path, mode="wb") as handle:
                    np.save(handle, vectors)
                write_json_atomic(
                    path.with_suffix(".json"),
                    {
                        "format": _CACHE_FORMAT,
                        "model": resolve_model_name(self.model_name),
                        "documents": len(corpus),
                        "dimension": int(vectors.shape[1]),
                        "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                )
        self.doc_ids = list(corpus)
        self.vectors = vectors
        self._position = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)

    # ------------------------------------------------------------------ queries
    def search(
        self,
        query_ids: Sequence[str],
        queries: Sequence[str],
        instructions: Sequence[str | None] | None = None,
        candidates: dict[str, list[str]] | None = None,
        k: int = DEFAULT_DEPTH,
    ) -> Run:
        """Score queries (+ instructions) against the indexed corpus or each query's candidates."""
        if self._index is None:
            raise RuntimeError("call index(corpus) before search()")
        query_vectors = encode_queries(
            self.model,
            list(queries),
            list(instructions) if instructions is not None else None,
            text_format=self.text_format,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )
        if candidates is not None:
            return self._rerank(query_ids, query_vectors, candidates)
        depth = min(k, len(self.doc_ids))
        scores, indices = self._index.search(query_vectors, depth)
        return {
            qid: {self.doc_ids[i]: float(s) for s, i in zip(row_scores, row_indices, strict=True) if i >= 0}
            for qid, row_scores, row_indices in zip(query_ids, scores, indices, strict=True)
        }

    def _rerank(
        self, query_ids: Sequence[str], query_vectors: np.ndarray, candidates: dict[str, list[str]]
    ) -> Run:
        # A candidate list is a few hundred rows: one gathered matrix-vector product is the same
        # exact inner product IndexFlatIP computes, without a per-query index.
        run: Run = {}
        for qid, vector in zip(query_ids, query_vectors, strict=True):
            doc_ids = candidates[qid]
            rows = np.fromiter((self._position[d] for d in doc_ids), dtype=np.int64, count=len(doc_ids))
            scores = self.vectors[rows] @ vector
            run[qid] = {doc_id: float(s) for doc_id, s in zip(doc_ids, scores, strict=True)}
        return run


class BM25Retriever:
    """BM25 (bm25s, Lucene variant) over the same query text as the dense models.

    Args:
        text_format: how query and instruction are joined (SPEC §3); default concat.
        k1, b: BM25 parameters (bm25s defaults).
        stopwords: bm25s stopword list ("en") or None.
    """

    label = BM25_NAME

    def __init__(
        self,
        text_format: TextFormat = "concat",
        k1: float = 1.5,
        b: float = 0.75,
        stopwords: str | None = "en",
    ) -> None:
        self.text_format: TextFormat = text_format
        self.k1 = k1
        self.b = b
        self.stopwords = stopwords
        self.doc_ids: list[str] = []
        self._bm25 = None

    def _tokenize(self, texts: list[str], return_ids: bool):
        import bm25s

        return bm25s.tokenize(texts, stopwords=self.stopwords, return_ids=return_ids, show_progress=False)

    def index(self, corpus: dict[str, Document]) -> None:
        import bm25s

        self.doc_ids = list(corpus)
        self._position = {doc_id: i for i, doc_id in enumerate(self.doc_ids)}
        self._bm25 = bm25s.BM25(k1=self.k1, b=self.b)
        self._bm25.index(self._tokenize([d.full_text for d in corpus.values()], True), show_progress=False)

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of `text` against every indexed document, in corpus order."""
        if self._bm25 is None:
            raise RuntimeError("call index(corpus) before search()")
        tokens = self._tokenize([text], False)[0]
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:  # bm25s cannot score an empty query; nothing matches, everything scores 0
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return self._bm25.get_scores(known)

    def search(
        self,
        query_ids: Sequence[str],
        queries: Sequence[str],
        instructions: Sequence[str | None] | None = None,
        candidates: dict[str, list[str]] | None = None,
        k: int = DEFAULT_DEPTH,
    ) -> Run:
        instructions = list(instructions) if instructions is not None else [None] * len(queries)
        run: Run = {}
        for qid, query, instruction in zip(query_ids, queries, instructions, strict=True):
            scores = self.scores(query_text(query, instruction, self.text_format))
            if candidates is not None:
                doc_ids = candidates[qid]
                run[qid] = {d: float(scores[self._position[d]]) for d in doc_ids}
            else:
                top = _top_k(scores, k)
                run[qid] = {self.doc_ids[i]: float(scores[i]) for i in top}
        return run


def make_retriever(
    name: str,
    text_format: TextFormat | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    show_progress: bool = False,
    device: str | None = None,
) -> Retriever:
    """``bm25`` -> BM25Retriever; anything else -> DenseRetriever (path, hub name, default)."""
    if name.lower() == BM25_NAME and not Path(name).exists():
        return BM25Retriever(text_format=text_format or "concat")
    return DenseRetriever(
        name,
        text_format=text_format,
        batch_size=batch_size,
        cache_dir=cache_dir,
        show_progress=show_progress,
        device=device,
    )
