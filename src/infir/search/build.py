"""Building an index folder: encode the corpus in shards (resumable), then faiss + store + manifest."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

import infir
from infir.data.beir import Document
from infir.data.errors import InputError
from infir.data.io import atomic_path, write_json_atomic
from infir.embed import encode_passages
from infir.models import load_model, model_label, model_text_format, resolve_model_name
from infir.search.ann import INDEX_TYPES, FaissOptions, create_faiss_index
from infir.search.corpus import corpus_fingerprint, read_search_corpus
from infir.search.layout import (
    BUILD_STATE_FILE,
    DOCS_FILE,
    INDEX_FILE,
    INDEX_FORMAT,
    INDEX_FORMAT_VERSION,
    MANIFEST_FILE,
    SAME_MODEL_MIN_COSINE,
    SHARDS_DIR,
    model_probe,
    probe_cosine,
    sha256_file,
    shard_path,
)
from infir.search.store import write_document_store

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# IVF trains on at most this many vectors per cluster (faiss's own cap).
_IVF_TRAINING_POINTS_PER_LIST = 256


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    out_dir: Path
    count: int
    dimension: int
    index_type: str
    shards_total: int
    shards_encoded: int
    shards_reused: int
    encode_seconds: float
    total_seconds: float


def build_index(
    model: str | Path | SentenceTransformer | None,
    corpus_path: str | Path,
    out_dir: str | Path,
    *,
    shard_size: int = 2048,
    index_type: str = "flat",
    batch_size: int = 64,
    faiss_options: FaissOptions | None = None,
    model_name: str | None = None,
    text_format: str | None = None,
    keep_shards: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> BuildReport:
    """Encode a corpus into an index folder that `Index.open` can search.

    Passages (BEIR full text: title + text) are encoded ``shard_size`` at a time; each finished
    shard is saved atomically, so a build that is killed resumes where it stopped when run again
    with the same corpus and model (finished shards are kept, not re-encoded).

    Args:
        model: a model name or path (None / "default": the packaged MiniLM), or a loaded model.
        corpus_path: a BEIR folder, a BEIR corpus.jsonl, or a JSONL of {"id", "title"?, "text"}.
        out_dir: the index folder (created).
        shard_size: passages per shard; smaller shards lose less work to a kill.
        index_type: "flat" (exact inner product), "hnsw" or "ivf" (approximate, for large corpora).
        batch_size: encoder batch size.
        faiss_options: HNSW / IVF parameters.
        model_name: the name recorded for a loaded ``model`` (so `Index.open` can load it again).
        text_format: query text format to record; default: the model's (`model_text_format`).
        keep_shards: keep the shard files after the build (they duplicate the vectors).
        overwrite: replace a finished index or an unfinished build of other input in ``out_dir``.
        show_progress: show a progress bar over passages.
    """
    started = time.perf_counter()
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r}; expected one of {INDEX_TYPES}")
    options = faiss_options or FaissOptions()
    out = Path(out_dir)
    if not overwrite and (out / MANIFEST_FILE).exists():
        raise InputError(out, None, None, "already holds a finished index; pass --overwrite to rebuild it")

    documents = read_search_corpus(corpus_path)
    if isinstance(model, str | Path) or model is None:
        model_name = model_name or str(model if model is not None else "default")
        model = load_model(model)
    model_info = _model_info(model, model_name)
    text_format = text_format or (model_text_format(model_name) if model_name else "concat")
    if overwrite:  # only once corpus and model are known good, so a bad call destroys nothing
        _remove_index_files(out)

    state = {
        "corpus": str(corpus_path),
        "corpus_sha256": corpus_fingerprint(documents),
        "count": len(documents),
        "shard_size": shard_size,
        "model": model_info,
    }
    _check_or_start_build(out, state)

    encode_started = time.perf_counter()
    shard_count = -(-len(documents) // shard_size)
    encoded, reused = _encode_shards(model, documents, out, shard_size, batch_size, show_progress)
    encode_seconds = time.perf_counter() - encode_started

    shard_paths = [shard_path(out, i) for i in range(shard_count)]
    index = _faiss_from_shards(shard_paths, index_type, model_info["dimension"], len(documents), options)
    with atomic_path(out / INDEX_FILE, mode="wb") as handle:
        handle.write(faiss.serialize_index(index).tobytes())
    write_document_store(out / DOCS_FILE, documents)

    manifest = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_FORMAT_VERSION,
        "infir_version": infir.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": model_info,
        "text_format": text_format,
        "dimension": model_info["dimension"],
        "count": len(documents),
        "index": {"type": index_type, "metric": "inner_product", "options": options.to_dict()},
        "build": {
            "corpus": str(corpus_path),
            "corpus_sha256": state["corpus_sha256"],
            "shard_size": shard_size,
        },
        "files": {
            name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
            for name in (INDEX_FILE, DOCS_FILE)
        },
    }
    write_json_atomic(out / MANIFEST_FILE, manifest)
    # The manifest marks the build finished; only now is the resume state disposable.
    (out / BUILD_STATE_FILE).unlink()
    if not keep_shards:
        for path in shard_paths:
            path.unlink()
        with contextlib.suppress(OSError):
            (out / SHARDS_DIR).rmdir()
    return BuildReport(
        out_dir=out,
        count=len(documents),
        dimension=model_info["dimension"],
        index_type=index_type,
        shards_total=shard_count,
        shards_encoded=encoded,
        shards_reused=reused,
        encode_seconds=encode_seconds,
        total_seconds=time.perf_counter() - started,
    )


def _model_info(model: SentenceTransformer, name: str | None) -> dict:
    resolved = resolve_model_name(name) if name else None
    if resolved and Path(resolved).exists():
        resolved = str(Path(resolved).resolve())
    return {
        "name": name,
        "label": model_label(name) if name else None,
        "path": resolved,
        "dimension": int(model.get_embedding_dimension()),
        "max_seq_length": model.max_seq_length,
        "probe": model_probe(model),
    }


def _check_or_start_build(out: Path, state: dict) -> None:
    """Record what this build encodes, or check that an unfinished build encoded the same."""
    state_path = out / BUILD_STATE_FILE
    if not state_path.exists():
        write_json_atomic(state_path, state)
        return
    try:
        earlier = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            state_path, None, None, f"unreadable build state ({exc}); pass --overwrite"
        ) from None
    for key, what in (("corpus_sha256", "corpus"), ("count", "document count"), ("shard_size", "shard size")):
        if earlier.get(key) != state[key]:
            raise InputError(
                out,
                None,
                None,
                f"holds an unfinished build with another {what}; pass --overwrite to start over",
            )
    cosine = probe_cosine(earlier.get("model", {}).get("probe", ""), state["model"]["probe"])
    if cosine < SAME_MODEL_MIN_COSINE:
        raise InputError(
            out,
            None,
            None,
            f"holds an unfinished build made with model {earlier.get('model', {}).get('name')!r}, "
            f"not {state['model']['name']!r}; pass --overwrite to start over",
        )


def _load_shard(path: Path, rows: int, dimension: int) -> np.ndarray | None:
    """A finished shard, or None when it is absent or unusable (then it is encoded again)."""
    if not path.exists():
        return None
    try:
        vectors = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return vectors if vectors.shape == (rows, dimension) and vectors.dtype == np.float32 else None


def _encode_shards(
    model: SentenceTransformer,
    documents: Sequence[Document],
    out: Path,
    shard_size: int,
    batch_size: int,
    show_progress: bool,
) -> tuple[int, int]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    dimension = int(model.get_embedding_dimension())
    encoded = reused = 0
    columns = (
        TextColumn("[bold]encoding passages"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # A build killed mid-write leaves its temp file (never a torn shard): clear those first.
    for leftover in (out / SHARDS_DIR).glob(".shard-*.tmp"):
        leftover.unlink()
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("encode", total=len(documents))
        for shard, start in enumerate(range(0, len(documents), shard_size)):
            chunk = documents[start : start + shard_size]
            path = shard_path(out, shard)
            if _load_shard(path, len(chunk), dimension) is not None:
                reused += 1
            else:
                vectors = encode_passages(model, [d.full_text for d in chunk], batch_size=batch_size)
                with atomic_path(path, mode="wb") as handle:
                    np.save(handle, vectors)
                encoded += 1
            progress.advance(task, len(chunk))
    return encoded, reused


def _faiss_from_shards(
    paths: Sequence[Path], index_type: str, dimension: int, count: int, options: FaissOptions
) -> faiss.Index:
    index = create_faiss_index(index_type, dimension, count, options)
    if not index.is_trained:
        index.train(_training_sample(paths, count, _IVF_TRAINING_POINTS_PER_LIST * index.nlist))
    for path in paths:
        # Added shard by shard so a large corpus never needs all vectors in memory twice.
        index.add(np.ascontiguousarray(np.load(path, mmap_mode="r")))
    return index


def _training_sample(paths: Sequence[Path], count: int, size: int, seed: int = 0) -> np.ndarray:
    """A seeded random sample of `size` rows across all shards (all rows when fewer)."""
    chosen = np.sort(np.random.default_rng(seed).choice(count, size=min(size, count), replace=False))
    parts, offset = [], 0
    for path in paths:
        shard = np.load(path, mmap_mode="r")
        local = chosen[(chosen >= offset) & (chosen < offset + len(shard))] - offset
        parts.append(np.asarray(shard[local]))
        offset += len(shard)
    return np.ascontiguousarray(np.concatenate(parts))


def _remove_index_files(out: Path) -> None:
    """Delete what a build writes (never anything else in the folder)."""
    for name in (MANIFEST_FILE, INDEX_FILE, DOCS_FILE, BUILD_STATE_FILE):
        (out / name).unlink(missing_ok=True)
    shards = out / SHARDS_DIR
    if shards.is_dir():
        for path in shards.glob("shard-*.npy"):
            path.unlink()
        with contextlib.suppress(OSError):
            shards.rmdir()
