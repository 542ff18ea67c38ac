"""Reading the documents to index: a BEIR folder, a BEIR corpus.jsonl, or a plain JSONL."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from infir.data.beir import Document, read_corpus
from infir.data.errors import InputError
from infir.data.io import iter_jsonl


def read_search_corpus(path: str | Path) -> list[Document]:
    """Documents in file order.

    Accepts a BEIR folder (its corpus.jsonl), a BEIR corpus.jsonl (``_id``, ``title``, ``text``),
    or a JSONL of ``{"id", "title"?, "text"}`` objects. Bad rows raise InputError naming file,
    line and field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
        if not path.is_file():
            raise InputError(path.parent, None, None, "a corpus folder must hold corpus.jsonl (BEIR layout)")
    first = next(iter_jsonl(path), None)
    if first is None:
        raise InputError(path, None, None, "the corpus holds no documents")
    _, first_row = first
    if "_id" in first_row:
        return list(read_corpus(path).values())
    return _read_id_jsonl(path)


def _read_id_jsonl(path: Path) -> list[Document]:
    documents: dict[str, Document] = {}
    for line, row in iter_jsonl(path):
        doc_id = row.get("id", row.get("_id"))
        if doc_id is None:
            raise InputError(path, line, "id", "missing (each row needs 'id' or '_id')")
        if isinstance(doc_id, int):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise InputError(path, line, "id", "expected a non-empty string")
        if doc_id in documents:
            raise InputError(path, line, "id", f"duplicate document id {doc_id!r}")
        text = row.get("text")
        if not isinstance(text, str):
            raise InputError(path, line, "text", "missing" if text is None else "expected a string")
        title = row.get("title") or ""
        if not isinstance(title, str):
            raise InputError(path, line, "title", "expected a string")
        documents[doc_id] = Document(doc_id, title, text)
    return list(documents.values())


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    """sha256 over ids, titles and texts in order: equal fingerprints mean equal shards."""
    digest = hashlib.sha256()
    for doc in documents:
        for part in (doc.doc_id, doc.title, doc.text):
            encoded = part.encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return digest.hexdigest()
