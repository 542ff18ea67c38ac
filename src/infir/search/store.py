"""The document store: row -> (id, title, text) in SQLite, so hits are looked up by faiss row."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from infir.data.beir import Document

_ROWS_PER_QUERY = 900


def write_document_store(path: Path, documents: Iterable[Document]) -> Path:
    """Write documents (row = position) into a new SQLite file, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.execute(
                "CREATE TABLE docs (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT, text TEXT)"
            )
            db.executemany(
                "INSERT INTO docs VALUES (?, ?, ?, ?)",
                ((row, d.doc_id, d.title, d.text) for row, d in enumerate(documents)),
            )
            db.commit()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


class DocumentStore:
    """Read-only access to a store written by `write_document_store`; safe to share across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def get_rows(self, rows: Sequence[int]) -> dict[int, Document]:
        """Documents of the given rows, keyed by row (rows not in the store are absent)."""
        wanted = sorted({int(r) for r in rows})
        found = []
        with self._lock:
            # In chunks: SQLite caps the number of bound parameters per statement.
            for start in range(0, len(wanted), _ROWS_PER_QUERY):
                chunk = wanted[start : start + _ROWS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                found += self._db.execute(
                    f"SELECT row, id, title, text FROM docs WHERE row IN ({marks})", chunk
                ).fetchall()
        return {row: Document(doc_id, title or "", text or "") for row, doc_id, title, text in found}

    def close(self) -> None:
        self._db.close()
