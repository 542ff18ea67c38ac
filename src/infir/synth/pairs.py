"""Input readers of the synthesis pipeline: (query, positive passage) pairs from BEIR or JSONL."""

from __future__ import annotations

from pathlib import Path

from infir.data.beir import read_corpus, read_qrels, read_queries
from infir.data.errors import InputError
from infir.data.io import read_jsonl_models
from infir.data.records import Pair


def _qrels_file(folder: Path, split: str | None) -> Path:
    qrels_dir = folder / "qrels"
    if split is not None:
        return qrels_dir / f"{split}.tsv"
    if (qrels_dir / "train.tsv").is_file():
        return qrels_dir / "train.tsv"
    found = sorted(qrels_dir.glob("*.tsv"))
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.stem for p in found) or "none"
    raise InputError(qrels_dir, None, None, f"cannot tell which split to use (found: {names}); pass a split")


def read_beir_pairs(folder: str | Path, split: str | None = None) -> list[Pair]:
    """One pair per positive qrel (score > 0) of a BEIR folder, in qrels file order.

    Args:
        folder: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).
        split: the qrels split; by default ``train`` when present, else the only split there is.
    """
    folder = Path(folder)
    if not (folder / "corpus.jsonl").is_file() or not (folder / "queries.jsonl").is_file():
        raise InputError(
            folder, None, None, "not a BEIR folder (expected corpus.jsonl, queries.jsonl, qrels/)"
        )
    qrels_path = _qrels_file(folder, split)
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(folder / "queries.jsonl")
    pairs = []
    for query_id, docs in read_qrels(qrels_path).items():
        for doc_id, score in docs.items():
            if score <= 0:
                continue
            if query_id not in queries:
                raise InputError(qrels_path, None, "query-id", f"{query_id!r} is not in queries.jsonl")
            if doc_id not in corpus:
                raise InputError(qrels_path, None, "corpus-id", f"{doc_id!r} is not in corpus.jsonl")
            passage = corpus[doc_id].full_text
            if not passage.strip():
                raise InputError(folder / "corpus.jsonl", None, "text", f"document {doc_id!r} is empty")
            pairs.append(
                Pair(query=queries[query_id]["text"], passage=passage, query_id=query_id, passage_id=doc_id)
            )
    return pairs


def read_pairs(path: str | Path, split: str | None = None) -> list[Pair]:
    """Read synthesis input: a BEIR folder (see `read_beir_pairs`) or a JSONL file of pairs.

    A JSONL line is ``{"query": ..., "passage": ..., "query_id"?: ..., "passage_id"?: ...}``;
    a bad line raises `InputError` naming the file, line and field.
    """
    path = Path(path)
    if path.is_dir():
        return read_beir_pairs(path, split)
    pairs, _ = read_jsonl_models(path, Pair)
    return pairs
