"""Opening an index folder and searching it with a query and an optional instruction."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from infir.embed import encode_queries
from infir.models import load_model
from infir.search.ann import FaissOptions, apply_search_options
from infir.search.layout import (
    BUILD_STATE_FILE,
    DOCS_FILE,
    INDEX_FILE,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    MANIFEST_FILE,
    SAME_MODEL_MIN_COSINE,
    SHARDS_DIR,
    InvalidIndexError,
    invalid_index,
    model_probe,
    probe_cosine,
    sha256_file,
)
from infir.search.store import DocumentStore

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class Hit:
    """One search result: the document, its score (cosine) and its 1-based rank."""

    id: str
    score: float
    title: str
    text: str
    rank: int


_MANIFEST_KEYS = ("model", "text_format", "dimension", "count", "index", "files")


def read_manifest(folder: str | Path, verify_checksums: bool = True) -> dict:
    """The manifest of a finished, intact index folder; InvalidIndexError naming the problem otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise invalid_index(folder, "no such index directory")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.exists():
        if (folder / BUILD_STATE_FILE).exists():
            done = len(list((folder / SHARDS_DIR).glob("shard-*.npy")))
            raise invalid_index(
                folder,
                f"unfinished build ({done} shard(s) encoded, no {MANIFEST_FILE}); "
                "rerun `infir index` with the same options to resume it",
            )
        raise invalid_index(folder, f"not an infir index ({MANIFEST_FILE} is missing)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_index(folder, f"{MANIFEST_FILE} is corrupt ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise invalid_index(folder, f"{MANIFEST_FILE} is not an infir index manifest")
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise invalid_index(folder, f"{MANIFEST_FILE} is corrupt (no {', '.join(missing)})")
    if manifest.get("format_version") != INDEX_FORMAT_VERSION:
        raise invalid_index(
            folder,
            f"index format version {manifest.get('format_version')} is not supported "
            f"(this infir reads version {INDEX_FORMAT_VERSION}); rebuild the index",
        )
    for name in (INDEX_FILE, DOCS_FILE):
        expected = manifest["files"].get(name)
        path = folder / name
        if not isinstance(expected, dict) or not {"sha256", "bytes"} <= set(expected):
            raise invalid_index(folder, f"{MANIFEST_FILE} lists no checksum for {name}")
        if not path.exists():
            raise invalid_index(folder, f"{name} is missing (partial or damaged index)")
        if path.stat().st_size != expected["bytes"]:
            raise invalid_index(
                folder, f"{name} has {path.stat().st_size} bytes, the manifest says {expected['bytes']}"
            )
        if verify_checksums and sha256_file(path) != expected["sha256"]:
            raise invalid_index(folder, f"{name} checksum mismatch (the file changed or is corrupt)")
    return manifest


class Index:
    """A searchable index folder (see `infir.search.layout`); open it with `Index.open`.

    Queries are joined with their instruction in the model's text format (the one training and
    evaluation use), encoded, and matched by inner product on normalised vectors.
    Safe to share across threads (encoding is serialised: tokenizers are not thread-safe).
    """

    def __init__(
        self,
        folder: Path,
        manifest: dict,
        faiss_index: faiss.Index,
        store: DocumentStore,
        model: SentenceTransformer,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.faiss_index = faiss_index
        self.store = store
        self.model = model
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        folder: str | Path,
        model: str | Path | SentenceTransformer | None = None,
        *,
        verify_checksums: bool = True,
    ) -> Index:
        """Open an index folder, loading the model named in its manifest unless one is given.

        Raises InvalidIndexError (naming the folder) for a missing, unfinished, corrupt or
        inconsistent index, or when the model does not embed like the one it was built with.
        """
        folder = Path(folder)
        manifest = read_manifest(folder, verify_checksums)
        count, dimension = manifest["count"], manifest["dimension"]
        try:
            faiss_index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as exc:
            raise invalid_index(folder, f"{INDEX_FILE} cannot be read by faiss ({exc})") from None
        if faiss_index.ntotal != count:
            raise invalid_index(
                folder, f"count mismatch: manifest says {count}, {INDEX_FILE} holds {faiss_index.ntotal}"
            )
        if faiss_index.d != dimension:
            raise invalid_index(
                folder, f"dimension mismatch: manifest says {dimension}, {INDEX_FILE} has {faiss_index.d}"
            )
        index_spec = manifest["index"]
        apply_search_options(faiss_index, index_spec["type"], FaissOptions(**index_spec.get("options", {})))
        store = DocumentStore(folder / DOCS_FILE)
        if len(store) != count:
            store.close()
            raise invalid_index(
                folder, f"count mismatch: manifest says {count}, {DOCS_FILE} holds {len(store)}"
            )
        try:
            loaded = _load_checked_model(folder, manifest, model)
        except BaseException:
            store.close()
            raise
        return cls(folder, manifest, faiss_index, store, loaded)

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def model_name(self) -> str:
        info = self.manifest["model"]
        return info.get("label") or info.get("name") or "unnamed model"

    @property
    def index_type(self) -> str:
        return self.manifest["index"]["type"]

    @property
    def text_format(self) -> str:
        return self.manifest["text_format"]

    def search(self, query: str, instruction: str | None = None, k: int = 10) -> list[Hit]:
        """The top-k documents for one query (with an optional instruction), best first."""
        return self.search_batch([query], [instruction], k=k)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        instructions: Sequence[str | None] | None = None,
        k: int = 10,
        batch_size: int = 64,
    ) -> list[list[Hit]]:
        """Top-k hits per query; `instructions` (None, or one per query, each may be None)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not queries:
            return []
        with self._lock:
            vectors = encode_queries(
                self.model, queries, instructions, text_format=self.text_format, batch_size=batch_size
            )
        scores, rows = self.search_vectors(vectors, k)
        documents = self.store.get_rows(rows[rows >= 0].tolist())
        results = []
        for query_scores, query_rows in zip(scores, rows, strict=True):
            hits = []
            for score, row in zip(query_scores, query_rows, strict=True):
                if row < 0:  # faiss pads with -1 when it finds fewer than k
                    continue
                doc = documents[int(row)]
                hits.append(Hit(doc.doc_id, float(score), doc.title, doc.text, len(hits) + 1))
            results.append(hits)
        return results

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss search of already-encoded query vectors: (scores, rows), each (n, min(k, count))."""
        return self.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k, self.count))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_checked_model(
    folder: Path, manifest: dict, model: str | Path | SentenceTransformer | None
) -> SentenceTransformer:
    """Load the index's model (or take the given one) and check it embeds like the build's."""
    info = manifest["model"]
    built_with = info.get("label") or info.get("name") or "an unnamed model"
    if model is None:
        source = _manifest_model_source(info)
        if source is None:
            raise invalid_index(
                folder, "the index was built with an in-memory model; pass the model explicitly"
            )
        try:
            model = load_model(source)
        except Exception as exc:  # OSError, ValueError, hub errors: the user needs the name and cause
            raise invalid_index(
                folder, f"cannot load the index's model {source!r} ({exc}); pass a model"
            ) from None
        given = built_with
    else:
        given = str(model) if isinstance(model, str | Path) else "the given model"
        if isinstance(model, str | Path):
            model = load_model(model)
    dimension = int(model.get_embedding_dimension())
    if dimension != manifest["dimension"]:
        raise invalid_index(
            folder,
            f"built with model {built_with!r} ({manifest['dimension']} dimensions); "
            f"{given!r} gives {dimension}-dimensional vectors",
        )
    cosine = probe_cosine(info["probe"], model_probe(model))
    if cosine < SAME_MODEL_MIN_COSINE:
        raise invalid_index(
            folder,
            f"built with model {built_with!r}; {given!r} embeds differently "
            f"(probe cosine {cosine:.3f} < {SAME_MODEL_MIN_COSINE}): rebuild the index or pass its model",
        )
    return model


def _manifest_model_source(info: dict) -> str | None:
    """Where to load the build's model from: its recorded folder when present, else its name."""
    path = info.get("path")
    if path and Path(path).exists():
        return path
    return info.get("name")


__all__ = ["Hit", "Index", "InvalidIndexError", "read_manifest"]
