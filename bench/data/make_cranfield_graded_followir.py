"""Instruction-following set from Cranfield's graded judgments (FollowIR layout).

FollowIR built its sets by making a topic's narrative stricter and re-judging: documents relevant
under the original narrative became non-relevant under the changed one. Cranfield's expert grades
allow the same narrowing without new judgments: its qrels grade each relevant document
4 = complete answer, 3 = high relevance, 2 = useful, 1 = minimum interest (5 − Cleverdon code).

- instruction_og (broad): every graded document is relevant; qrels/og.tsv = all grades >= 1.
- instruction_changed (strict): only documents graded >= `--strict-grade` (default 3: complete
  answer or high relevance) are relevant; qrels/changed.tsv keeps those and sets the rest to 0.
- Changed documents: those graded 1..strict-grade−1. A query is kept only when it has at least one
  document on each side of the line, so both qrels are non-empty and p-MRR is defined.
- Corpus: all 1,400 Cranfield documents (title, text as in the BEIR copy); no top_ranked.

The two instructions are the same text for every query (the grade line is generic, not
topic-specific), so this set probes whether a model reacts to a strictness instruction at all.

    .venv/bin/python bench/data/make_cranfield_graded_followir.py [--source ../shared/data/cranfield] \
        [--strict-grade 3] [--out bench/data/build/cranfield-graded-followir]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from followir_layout import BUILD_ROOT, write_followir

from infir.data.beir import read_beir

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cranfield"

INSTRUCTION_OG = (
    "A relevant document addresses the question at any level: a complete answer, a highly relevant "
    "treatment, useful background, or material of minimum interest all count as relevant."
)
INSTRUCTION_STRICT = {
    3: (
        "A relevant document must give a complete answer to the question or be highly relevant to it. "
        "Documents that only provide useful background or are of minimum interest are not relevant."
    ),
    4: (
        "A relevant document must give a complete answer to the question. Documents that are only "
        "highly relevant, provide useful background or are of minimum interest are not relevant."
    ),
    2: (
        "A relevant document must at least be useful for the question: a complete answer, a highly "
        "relevant treatment or useful background. Documents of only minimum interest are not relevant."
    ),
}


def build(source: Path, out: Path, strict_grade: int = 3) -> dict:
    if strict_grade not in INSTRUCTION_STRICT:
        raise ValueError(f"--strict-grade must be one of {sorted(INSTRUCTION_STRICT)}, got {strict_grade}")
    beir = read_beir(source, split="test")
    queries: list[dict] = []
    qrels_og: dict[str, dict[str, int]] = {}
    qrels_changed: dict[str, dict[str, int]] = {}
    for qid, query in beir.queries.items():
        graded = {doc_id: grade for doc_id, grade in beir.qrels.get(qid, {}).items() if grade > 0}
        strict = {doc_id for doc_id, grade in graded.items() if grade >= strict_grade}
        if not strict or len(strict) == len(graded):
            continue  # nothing would change, or nothing would stay relevant
        queries.append(
            {
                "_id": qid,
                "text": query["text"],
                "instruction_og": INSTRUCTION_OG,
                "instruction_changed": INSTRUCTION_STRICT[strict_grade],
            }
        )
        qrels_og[qid] = graded
        qrels_changed[qid] = {doc_id: (grade if doc_id in strict else 0) for doc_id, grade in graded.items()}
    corpus = [{"_id": d.doc_id, "title": d.title, "text": d.text} for d in beir.corpus.values()]
    info = {
        "name": "cranfield-graded-followir",
        "source": str(source),
        "strict_grade": strict_grade,
        "source_queries": len(beir.queries),
        "construction": "og: all graded docs relevant (broad instruction); changed: grade >= strict_grade "
        "relevant, lower grades 0 (strict instruction); queries with docs on both sides only",
    }
    return write_followir(out, corpus, queries, qrels_og, qrels_changed, info)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Cranfield in BEIR layout")
    parser.add_argument("--strict-grade", type=int, default=3, choices=sorted(INSTRUCTION_STRICT))
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    args = parser.parse_args()
    suffix = "" if args.strict_grade == 3 else f"-grade{args.strict_grade}"
    out = args.out or BUILD_ROOT / f"cranfield-graded-followir{suffix}"
    counts = build(args.source, out, args.strict_grade)
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    main()
