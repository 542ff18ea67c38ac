"""Write and check one instruction-following benchmark in the FollowIR layout (SPEC §6).

    <out>/corpus.jsonl       {"_id", "title", "text"}
    <out>/queries.jsonl      {"_id", "text", "instruction_og", "instruction_changed"}
    <out>/qrels/og.tsv       BEIR tsv with header: relevance under the original instruction
    <out>/qrels/changed.tsv  BEIR tsv with header: relevance under the changed instruction
    <out>/top_ranked.jsonl   optional {"query-id", "corpus-ids": [...]}: candidates to rerank
    <out>/build_info.json    how the set was made (source, counts, command); not read by evaluation

Shared by the `make_*.py` builders beside it; every builder validates before it writes, so a
broken set is never left on disk.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from infir.data import write_json_atomic, write_jsonl_atomic
from infir.data.beir import Qrels, write_qrels
from infir.evaluate.metrics import changed_documents

BUILD_ROOT = Path(__file__).resolve().parent / "build"
QUERY_FIELDS = ("_id", "text", "instruction_og", "instruction_changed")


def text_id(prefix: str, text: str) -> str:
    """A document id that depends only on the text, so rebuilding from reordered rows keeps ids."""
    return f"{prefix}{hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


def check(
    corpus: list[dict], queries: list[dict], qrels_og: Qrels, qrels_changed: Qrels, top_ranked: dict | None
) -> None:
    """Raise ValueError naming the first problem; the evaluation would otherwise score it silently."""
    doc_ids = [doc["_id"] for doc in corpus]
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError("duplicate document ids in the corpus")
    known_docs = set(doc_ids)
    query_ids = [q["_id"] for q in queries]
    if len(set(query_ids)) != len(query_ids):
        raise ValueError("duplicate query ids")
    for query in queries:
        for field in QUERY_FIELDS:
            if not str(query.get(field, "")).strip():
                raise ValueError(f"query {query.get('_id')!r}: empty or missing {field!r}")
    for name, qrels in (("og", qrels_og), ("changed", qrels_changed)):
        if set(qrels) - set(query_ids):
            raise ValueError(f"qrels/{name}.tsv names queries that are not in queries.jsonl")
        missing = {d for judged in qrels.values() for d in judged} - known_docs
        if missing:
            raise ValueError(f"qrels/{name}.tsv names {len(missing)} documents absent from the corpus")
    changed = changed_documents(qrels_og, qrels_changed)
    without_change = [qid for qid in query_ids if qid not in changed]
    if without_change:
        raise ValueError(f"{len(without_change)} queries have no changed document (p-MRR undefined)")
    if top_ranked is not None:
        for qid, candidates in top_ranked.items():
            if set(candidates) - known_docs:
                raise ValueError(f"top_ranked for {qid!r} names documents absent from the corpus")


def write_followir(
    out: Path,
    corpus: list[dict],
    queries: list[dict],
    qrels_og: Qrels,
    qrels_changed: Qrels,
    info: dict,
    top_ranked: dict[str, list[str]] | None = None,
) -> dict:
    """Check, then write the set atomically file by file; returns the counts also put in build_info."""
    check(corpus, queries, qrels_og, qrels_changed, top_ranked)
    counts = {
        "documents": len(corpus),
        "queries": len(queries),
        "qrels_og_relevant": sum(r > 0 for judged in qrels_og.values() for r in judged.values()),
        "qrels_changed_relevant": sum(r > 0 for judged in qrels_changed.values() for r in judged.values()),
        "changed_documents": sum(len(v) for v in changed_documents(qrels_og, qrels_changed).values()),
    }
    write_jsonl_atomic(out / "corpus.jsonl", corpus)
    write_jsonl_atomic(out / "queries.jsonl", queries)
    write_qrels(out / "qrels" / "og.tsv", qrels_og)
    write_qrels(out / "qrels" / "changed.tsv", qrels_changed)
    top_ranked_path = out / "top_ranked.jsonl"
    if top_ranked is not None:
        write_jsonl_atomic(top_ranked_path, ({"query-id": q, "corpus-ids": c} for q, c in top_ranked.items()))
    else:
        # A stale file from an earlier build would silently restrict the candidates.
        top_ranked_path.unlink(missing_ok=True)
    write_json_atomic(out / "build_info.json", {**info, "counts": counts, "command": " ".join(sys.argv)})
    return counts
