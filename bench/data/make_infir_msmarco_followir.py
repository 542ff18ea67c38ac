"""In-domain instruction-following set from the held-out InF-IR split (FollowIR layout).

Per InF-IR row (SPEC §1): query text = Q+, instruction_og = I+, instruction_changed = I−.
The corpus is every passage of the split (P+, HN1, HN2 of every row), deduplicated by text, with
ids derived from the text. qrels/og.tsv: P+ relevant (1), HN1 judged non-relevant (0);
qrels/changed.tsv: HN1 relevant (1), P+ non-relevant (0). So P+ is each query's changed document:
p-MRR rewards a model that ranks P+ lower once I+ becomes I−. No top_ranked.jsonl: every query
ranks the whole corpus.

`--extra-corpus` adds the passages of a BEIR corpus (e.g. ../shared/data/msmarco-sample) as
distractors; they are unjudged, i.e. non-relevant for every query.

    .venv/bin/python bench/data/make_infir_msmarco_followir.py \
        [--source ../shared/data/infir-msmarco/test.jsonl] [--out bench/data/build/infir-msmarco-followir]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from followir_layout import BUILD_ROOT, text_id, write_followir

from infir.data import iter_jsonl, load_records

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "infir-msmarco" / "test.jsonl"


def build(source: Path, out: Path, extra_corpus: Path | None = None) -> dict:
    rows, _ = load_records(source)  # raises InputError naming file, line and field on a bad row
    texts: dict[str, str] = {}  # text -> id, in first-seen order

    def doc_id(text: str) -> str:
        return texts.setdefault(text, text_id("d", text))

    queries: list[dict] = []
    qrels_og: dict[str, dict[str, int]] = {}
    qrels_changed: dict[str, dict[str, int]] = {}
    for line, row in enumerate(rows, start=1):
        qid = str(row.extra.get("source_query_id") or f"row{line}")
        if qid in qrels_og:
            raise ValueError(f"{source}, line {line}: query id {qid!r} repeats an earlier row")
        positive, hn1 = doc_id(row.document_positive), doc_id(row.hard_negative_document_1)
        doc_id(row.hard_negative_document_2)  # in the corpus as a distractor; unjudged
        queries.append(
            {
                "_id": qid,
                "text": row.query_positive,
                "instruction_og": row.instruction_positive,
                "instruction_changed": row.instruction_negative,
            }
        )
        qrels_og[qid] = {positive: 1, hn1: 0}
        qrels_changed[qid] = {hn1: 1, positive: 0}
    split_documents = len(texts)
    if extra_corpus is not None:
        for _, doc in iter_jsonl(extra_corpus):
            doc_id(doc["text"])
    corpus = [{"_id": i, "title": "", "text": t} for t, i in texts.items()]
    info = {
        "name": "infir-msmarco-followir",
        "source": str(source),
        "extra_corpus": str(extra_corpus) if extra_corpus else None,
        "split_documents": split_documents,
        "construction": "query=Q+, og=I+, changed=I-; og: P+ 1, HN1 0; changed: HN1 1, P+ 0; "
        "corpus = P+/HN1/HN2 of all rows deduplicated by text (+ extra corpus); no top_ranked",
    }
    return write_followir(out, corpus, queries, qrels_og, qrels_changed, info)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="InF-IR rows (held-out split)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--extra-corpus", type=Path, default=None, help="BEIR corpus.jsonl of distractors")
    args = parser.parse_args()
    name = "infir-msmarco-followir" + ("-distractors" if args.extra_corpus else "")
    out = args.out or BUILD_ROOT / name
    counts = build(args.source, out, args.extra_corpus)
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    main()
