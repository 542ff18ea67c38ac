"""BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (SPEC §6)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from infir.data.errors import InputError
from infir.data.io import iter_jsonl

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and text joined the way BEIR evaluations encode passages."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


def _require_str(obj: dict, key: str, path: Path, line: int, allow_empty: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        raise InputError(path, line, key, "missing")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(path, line, key, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InputError(path, line, key, "empty")
    return value


def read_corpus(path: str | Path) -> dict[str, Document]:
    """corpus.jsonl -> {doc_id: Document}; empty texts are allowed (BEIR has some)."""
    path = Path(path)
    corpus: dict[str, Document] = {}
    for line, obj in iter_jsonl(path):
        doc_id = _require_str(obj, "_id", path, line)
        if doc_id in corpus:
            raise InputError(path, line, "_id", f"duplicate document id {doc_id!r}")
        text = _require_str(obj, "text", path, line, allow_empty=True)
        title = obj.get("title") or ""
        corpus[doc_id] = Document(doc_id, str(title), text)
    return corpus


def read_queries(path: str | Path, extra_fields: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """queries.jsonl -> {query_id: {"text": ..., <extra_fields>...}}; extra fields are required."""
    path = Path(path)
    queries: dict[str, dict[str, str]] = {}
    for line, obj in iter_jsonl(path):
        query_id = _require_str(obj, "_id", path, line)
        entry = {"text": _require_str(obj, "text", path, line)}
        for field in extra_fields:
            entry[field] = _require_str(obj, field, path, line)
        queries[query_id] = entry
    return queries


def read_qrels(path: str | Path) -> Qrels:
    """BEIR qrels tsv (header `query-id corpus-id score`) or TREC qrels (`qid 0 docid rel`)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, None, "qrels file not found")
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, raw in enumerate(handle, start=1):
            parts = raw.split()
            if not parts:
                continue
            if line_no == 1 and parts[0] in {"query-id", "qid", "query_id"}:
                continue
            if len(parts) == 4:  # TREC: qid iter docid rel
                qid, _, doc_id, score = parts
            elif len(parts) == 3:
                qid, doc_id, score = parts
            else:
                raise InputError(
                    path, line_no, None, f"expected 3 (BEIR) or 4 (TREC) columns, got {len(parts)}"
                )
            try:
                qrels.setdefault(qid, {})[doc_id] = int(float(score))
            except ValueError:
                raise InputError(path, line_no, "score", f"not a number: {score!r}") from None
    return qrels


def write_qrels(path: str | Path, qrels: Qrels) -> Path:
    """Write BEIR tsv qrels atomically."""
    from infir.data.io import atomic_path

    with atomic_path(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        for qid, docs in qrels.items():
            for doc_id, score in docs.items():
                writer.writerow([qid, doc_id, score])
    return Path(path)


@dataclass
class BeirDataset:
    corpus: dict[str, Document]
    queries: dict[str, dict[str, str]]
    qrels: Qrels


def read_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            folder, None, None, "not a BEIR folder (expected corpus.jsonl, queries.jsonl, qrels/)"
        )
    return BeirDataset(
        corpus=read_corpus(folder / "corpus.jsonl"),
        queries=read_queries(folder / "queries.jsonl"),
        qrels=read_qrels(folder / "qrels" / f"{split}.tsv"),
    )
