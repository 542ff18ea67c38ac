"""What an index folder holds, and the checks that tell a usable one from a broken one.

An index folder::

    manifest.json    written last: its presence marks a finished build (model, dimension, count,
                     options, text format, infir version, sha256 of the files below, created date)
    index.faiss      the faiss index; vector i is document row i
    docs.sqlite      the id map and the document store: row -> (id, title, text)
    build.json       only during a build: what the shards were encoded from, so a resume can check
    shards/          only during a build (or with keep_shards): shard-00000.npy, ... (float32 rows)
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infir.data.errors import InputError
from infir.embed import encode_passages

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.faiss"
DOCS_FILE = "docs.sqlite"
BUILD_STATE_FILE = "build.json"
SHARDS_DIR = "shards"
INDEX_FORMAT = "infir-index"
INDEX_FORMAT_VERSION = 1

# A fixed text every model embeds at build time; the vector goes into the manifest (base64
# float32). Re-embedding it later tells whether a model is the one the index was built with,
# whatever its name or path (a model folder retrained in place keeps its name, not its vectors).
PROBE_TEXT = "infir index model check: a query about retrieval, instructions and passages."
# Same weights on another device or thread count agree to ~1e-6; another model is far below this.
SAME_MODEL_MIN_COSINE = 0.99


class InvalidIndexError(InputError):
    """An index folder that cannot be used (missing, partial, corrupt, or built with another model).

    The message names the folder and the problem.
    """


def invalid_index(folder: str | Path, problem: str) -> InvalidIndexError:
    return InvalidIndexError(Path(folder), None, None, problem)


def shard_path(folder: Path, shard: int) -> Path:
    return folder / SHARDS_DIR / f"shard-{shard:05d}.npy"


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def model_probe(model: SentenceTransformer) -> str:
    """The model's embedding of PROBE_TEXT as base64 float32 (one compact manifest line)."""
    vector = encode_passages(model, [PROBE_TEXT])[0]
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


def probe_cosine(expected: str, actual: str) -> float:
    """Cosine of two probes from `model_probe` (0.0 when unreadable or of other dimensions)."""
    try:
        a, b = (
            np.frombuffer(base64.b64decode(p), dtype="<f4").astype(np.float64) for p in (expected, actual)
        )
    except (ValueError, TypeError):
        return 0.0
    if a.shape != b.shape or not a.size:
        return 0.0
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
