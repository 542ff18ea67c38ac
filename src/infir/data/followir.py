"""Benchmarks for `infir eval`: the FollowIR layout, the FollowIR sets on the hub, and BEIR folders.

FollowIR layout (SPEC §6, ours, mirroring the FollowIR data)::

    corpus.jsonl          {"_id", "title", "text"}
    queries.jsonl         {"_id", "text", "instruction_og", "instruction_changed"}
    qrels/og.tsv          BEIR tsv, judgments under the original instruction
    qrels/changed.tsv     BEIR tsv, judgments under the changed instruction
    top_ranked.jsonl      optional {"query-id", "corpus-ids": [...]}: each query's candidates

The FollowIR sets on the hub (``jhu-clsp/robust04-instructions`` and friends) keep the same data
as dataset configs: ``corpus`` (split ``corpus``), ``queries`` (split ``queries``; also
``keywords`` and ``short_query``), ``qrels_og`` and ``qrels_changed`` (split ``test``, float
scores) and ``top_ranked`` (split ``top_ranked``, one ``qid``/``pid`` row per candidate). A local
folder in that layout (a README.md declaring the configs) is read the same way, offline.

Problems that would silently skew a score (judged documents missing from the corpus, queries
without judgments) become counted warnings on `Benchmark.warnings`; problems that make a score
meaningless (a missing qrels file, a query without its changed instruction, no judged document in
the corpus at all) raise `InputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from infir.data.beir import Document, Qrels, read_corpus, read_qrels, read_queries
from infir.data.errors import InputError
from infir.data.io import iter_jsonl

logger = logging.getLogger(__name__)

INSTRUCTION_FIELDS = ("instruction_og", "instruction_changed")

# FollowIR's own headline per set (SPEC §5); every other benchmark reports nDCG@10.
DEFAULT_HEADLINE = "nDCG@10"
FOLLOWIR_HEADLINES = {"robust04": "MAP@1000", "core17": "MAP@1000", "news21": "nDCG@5"}

# Short names -> hub repository and the revision mteb's FollowIR tasks pinned (so numbers are
# comparable with the published ones).
FOLLOWIR_HUB_SETS: dict[str, tuple[str, str]] = {
    "robust04": ("jhu-clsp/robust04-instructions", "a5a1c4fe2bc528ac12e83f8cdf82178da85d2f1d"),
    "news21": ("jhu-clsp/news21-instructions", "e0144086b45fe31ac125e9ac1a83b6a409bb6ca6"),
    "core17": ("jhu-clsp/core17-instructions", "e39ff896cf3efbbdeeb950e6bd7c79f266995b07"),
}


@dataclass
class Benchmark:
    """One evaluation set, already validated.

    Instruction-following benchmarks carry both instructions and both qrels; standard (BEIR)
    retrieval benchmarks leave `instructions_*` empty and `qrels_changed` None.
    """

    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels_og: Qrels
    qrels_changed: Qrels | None = None
    instructions_og: dict[str, str] = field(default_factory=dict)
    instructions_changed: dict[str, str] = field(default_factory=dict)
    top_ranked: dict[str, list[str]] | None = None
    headline: str = DEFAULT_HEADLINE
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def follows_instructions(self) -> bool:
        return self.qrels_changed is not None

    @property
    def query_ids(self) -> list[str]:
        return list(self.queries)


def headline_for(name: str) -> str:
    """FollowIR's headline metric when `name` names one of its sets, else nDCG@10."""
    lowered = name.lower()
    for key, metric in FOLLOWIR_HEADLINES.items():
        if key in lowered:
            return metric
    return DEFAULT_HEADLINE


# --------------------------------------------------------------------------- local FollowIR layout
def read_top_ranked(path: str | Path) -> dict[str, list[str]]:
    """top_ranked.jsonl {"query-id", "corpus-ids": [...]} -> {query_id: [doc_id, ...]}."""
    path = Path(path)
    top_ranked: dict[str, list[str]] = {}
    for line, obj in iter_jsonl(path):
        query_id = obj.get("query-id")
        if query_id is None or (isinstance(query_id, str) and not query_id.strip()):
            raise InputError(path, line, "query-id", "missing")
        doc_ids = obj.get("corpus-ids")
        if not isinstance(doc_ids, list) or not doc_ids:
            raise InputError(path, line, "corpus-ids", "expected a non-empty list of document ids")
        top_ranked.setdefault(str(query_id), []).extend(str(doc_id) for doc_id in doc_ids)
    return top_ranked


def read_followir(folder: str | Path, name: str | None = None, headline: str | None = None) -> Benchmark:
    """Read a FollowIR-layout folder (see the module docstring) into a validated Benchmark."""
    folder = Path(folder)
    queries_path = folder / "queries.jsonl"
    rows = read_queries(queries_path, extra_fields=INSTRUCTION_FIELDS)
    name = name or folder.name
    top_ranked_path = folder / "top_ranked.jsonl"
    benchmark = Benchmark(
        name=name,
        corpus=read_corpus(folder / "corpus.jsonl"),
        queries={qid: row["text"] for qid, row in rows.items()},
        instructions_og={qid: row["instruction_og"] for qid, row in rows.items()},
        instructions_changed={qid: row["instruction_changed"] for qid, row in rows.items()},
        qrels_og=read_qrels(folder / "qrels" / "og.tsv"),
        qrels_changed=read_qrels(folder / "qrels" / "changed.tsv"),
        top_ranked=read_top_ranked(top_ranked_path) if top_ranked_path.exists() else None,
        headline=headline or headline_for(name),
        source=str(folder),
    )
    return validate_benchmark(benchmark)


# --------------------------------------------------------------------------- hub layout
def _hub_rows(repo: str, config: str, split: str, revision: str | None) -> list[dict]:
    import datasets

    try:
        dataset = datasets.load_dataset(repo, config, revision=revision)
    except Exception as exc:  # datasets raises many types; the user needs the source and the cause
        raise InputError(repo, None, config, f"could not load config '{config}': {exc}") from exc
    # Revisions differ in split names; mteb reads the named split when there, else the only one.
    if split not in dataset:
        if len(dataset) != 1:
            raise InputError(repo, None, config, f"no split '{split}' (has {sorted(dataset)})")
        split = next(iter(dataset))
    return list(dataset[split])


def _hub_text(row: dict, key: str, source: str, row_no: int, allow_empty: bool = False) -> str:
    value = row.get(key)
    if value is None or (not allow_empty and not str(value).strip()):
        raise InputError(source, row_no, key, "missing" if value is None else "empty")
    return str(value)


def _hub_qrels(rows: Iterable[dict], source: str) -> Qrels:
    qrels: Qrels = {}
    for row_no, row in enumerate(rows, start=1):
        score = row.get("score")
        if score is None:
            raise InputError(source, row_no, "score", "missing")
        doc_id = _hub_text(row, "corpus-id", source, row_no)
        qrels.setdefault(_hub_text(row, "query-id", source, row_no), {})[doc_id] = int(float(score))
    return qrels


def load_followir_hub(
    repo: str,
    revision: str | None = None,
    name: str | None = None,
    headline: str | None = None,
) -> Benchmark:
    """Load a FollowIR set in the hub layout (a hub repository, or a local folder in that layout).

    Needs internet for a hub name; a local folder is read offline by `datasets.load_dataset`.
    """
    corpus: dict[str, Document] = {}
    source = f"{repo}[corpus]"
    for row_no, row in enumerate(_hub_rows(repo, "corpus", "corpus", revision), start=1):
        doc_id = _hub_text(row, "_id", source, row_no)
        if doc_id in corpus:
            raise InputError(source, row_no, "_id", f"duplicate document id {doc_id!r}")
        corpus[doc_id] = Document(
            doc_id, str(row.get("title") or ""), _hub_text(row, "text", source, row_no, True)
        )

    queries: dict[str, str] = {}
    instructions: dict[str, dict[str, str]] = {key: {} for key in INSTRUCTION_FIELDS}
    source = f"{repo}[queries]"
    for row_no, row in enumerate(_hub_rows(repo, "queries", "queries", revision), start=1):
        query_id = _hub_text(row, "_id", source, row_no)
        queries[query_id] = _hub_text(row, "text", source, row_no)
        for key in INSTRUCTION_FIELDS:
            instructions[key][query_id] = _hub_text(row, key, source, row_no)

    top_ranked: dict[str, list[str]] = {}
    source = f"{repo}[top_ranked]"
    for row_no, row in enumerate(_hub_rows(repo, "top_ranked", "top_ranked", revision), start=1):
        if "corpus-ids" in row:  # newer layout: one row per query with the whole list
            top_ranked.setdefault(_hub_text(row, "query-id", source, row_no), []).extend(
                str(doc_id) for doc_id in row["corpus-ids"]
            )
        else:  # FollowIR's release: one (qid, pid) row per candidate
            top_ranked.setdefault(_hub_text(row, "qid", source, row_no), []).append(
                _hub_text(row, "pid", source, row_no)
            )

    name = name or repo.rstrip("/").split("/")[-1].removesuffix("-instructions")
    benchmark = Benchmark(
        name=name,
        corpus=corpus,
        queries=queries,
        instructions_og=instructions["instruction_og"],
        instructions_changed=instructions["instruction_changed"],
        qrels_og=_hub_qrels(_hub_rows(repo, "qrels_og", "test", revision), f"{repo}[qrels_og]"),
        qrels_changed=_hub_qrels(
            _hub_rows(repo, "qrels_changed", "test", revision), f"{repo}[qrels_changed]"
        ),
        top_ranked=top_ranked or None,
        headline=headline or headline_for(name),
        source=f"{repo}@{revision}" if revision else repo,
    )
    return validate_benchmark(benchmark)


# --------------------------------------------------------------------------- BEIR
def read_beir_benchmark(
    folder: str | Path, split: str = "test", name: str | None = None, headline: str | None = None
) -> Benchmark:
    """A BEIR folder as a standard-retrieval Benchmark (no instructions, no changed qrels)."""
    folder = Path(folder)
    rows = read_queries(folder / "queries.jsonl")
    name = name or folder.name
    benchmark = Benchmark(
        name=name,
        corpus=read_corpus(folder / "corpus.jsonl"),
        queries={qid: row["text"] for qid, row in rows.items()},
        qrels_og=read_qrels(folder / "qrels" / f"{split}.tsv"),
        headline=headline or headline_for(name),
        source=str(folder),
    )
    return validate_benchmark(benchmark)


# --------------------------------------------------------------------------- dispatch
def _is_hub_layout(folder: Path) -> bool:
    return (folder / "qrels_og").is_dir() and (folder / "README.md").is_file()


def load_benchmark(spec: str | Path, headline: str | None = None, split: str = "test") -> Benchmark:
    """Load a benchmark from what a user typed after `--benchmark`.

    - a FollowIR-layout folder (has qrels/og.tsv),
    - a local folder in the hub layout (README.md + qrels_og/),
    - a BEIR folder (qrels/<split>.tsv; standard retrieval only),
    - ``robust04``, ``news21``, ``core17`` or a hub repository name (needs internet).
    """
    path = Path(spec)
    if path.is_dir():
        if (path / "qrels" / "og.tsv").exists() or (path / "qrels" / "changed.tsv").exists():
            return read_followir(path, headline=headline)
        if _is_hub_layout(path):
            return load_followir_hub(str(path), name=path.name, headline=headline)
        if (path / "qrels").is_dir():
            return read_beir_benchmark(path, split=split, headline=headline)
        raise InputError(
            path,
            None,
            None,
            "not a benchmark folder: expected qrels/og.tsv (FollowIR), qrels/<split>.tsv "
            "(BEIR) or a hub-layout README.md with qrels_og/",
        )
    if str(spec) in FOLLOWIR_HUB_SETS:
        repo, revision = FOLLOWIR_HUB_SETS[str(spec)]
        return load_followir_hub(repo, revision=revision, name=str(spec), headline=headline)
    # Anything but "owner/name" is a folder the user meant, not a hub repository.
    if str(spec).count("/") != 1 or path.suffix or str(spec).startswith("."):
        raise InputError(path, None, None, "benchmark folder not found")
    for short, (repo, revision) in FOLLOWIR_HUB_SETS.items():
        if str(spec) == repo:
            return load_followir_hub(repo, revision=revision, name=short, headline=headline)
    return load_followir_hub(str(spec), headline=headline)


# --------------------------------------------------------------------------- validation
def _warn(benchmark: Benchmark, message: str) -> None:
    benchmark.warnings.append(message)
    logger.warning("%s: %s", benchmark.name, message)


def _examples(items: Iterable[str], limit: int = 3) -> str:
    items = list(items)
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def validate_benchmark(benchmark: Benchmark) -> Benchmark:
    """Check ids across corpus, queries, qrels and candidates; counted warnings or InputError.

    Queries without og judgments are dropped (mteb's FollowIR loader does the same), with a warning
    that says how many.
    """
    source = benchmark.source or benchmark.name
    corpus_ids = benchmark.corpus.keys()

    unknown = sorted(set(benchmark.qrels_og) - set(benchmark.queries))
    if unknown:
        _warn(
            benchmark, f"{len(unknown)} judged query id(s) not in the queries, ignored: {_examples(unknown)}"
        )
    unjudged = [qid for qid in benchmark.queries if not benchmark.qrels_og.get(qid)]
    if unjudged:
        _warn(benchmark, f"{len(unjudged)} quer(y/ies) without og judgments, left out: {_examples(unjudged)}")
        for qid in unjudged:
            for table in (benchmark.queries, benchmark.instructions_og, benchmark.instructions_changed):
                table.pop(qid, None)
    if not benchmark.queries:
        raise InputError(source, None, "qrels", "no query has a judgment: nothing to evaluate")

    for label, qrels in (("og", benchmark.qrels_og), ("changed", benchmark.qrels_changed)):
        if qrels is None:
            continue
        judged = [(qid, doc) for qid in benchmark.queries for doc in qrels.get(qid, {})]
        missing = sorted({doc for _, doc in judged if doc not in corpus_ids})
        if missing:
            _warn(
                benchmark,
                f"{len(missing)} judged ({label}) document id(s) are not in the corpus and can never be "
                f"retrieved: {_examples(missing)}",
            )
    relevant_found = any(
        score > 0 and doc in corpus_ids
        for qid in benchmark.queries
        for doc, score in benchmark.qrels_og.get(qid, {}).items()
    )
    if not relevant_found:
        raise InputError(
            source, None, "qrels", "no relevant (og) document is in the corpus: ids do not match"
        )

    if benchmark.qrels_changed is not None:
        without = [qid for qid in benchmark.queries if qid not in benchmark.qrels_changed]
        if without:
            _warn(
                benchmark,
                f"{len(without)} quer(y/ies) have no changed judgments, so every og-relevant document "
                f"counts as changed: {_examples(without)}",
            )
        changed = benchmark.qrels_changed
        if not any(
            score > 0 and changed.get(qid, {}).get(doc, 0) <= 0
            for qid in benchmark.queries
            for doc, score in benchmark.qrels_og[qid].items()
        ):
            raise InputError(
                source,
                None,
                "qrels",
                "no og-relevant document loses relevance in the changed qrels: p-MRR is undefined",
            )
        for qid in benchmark.queries:
            for key, table in zip(
                INSTRUCTION_FIELDS, (benchmark.instructions_og, benchmark.instructions_changed), strict=True
            ):
                if not table.get(qid, "").strip():
                    raise InputError(source, None, key, f"query {qid!r} has no {key}")

    if benchmark.top_ranked is not None:
        lacking = [qid for qid in benchmark.queries if not benchmark.top_ranked.get(qid)]
        if lacking:
            raise InputError(
                source,
                None,
                "top_ranked",
                f"{len(lacking)} quer(y/ies) have no candidates: {_examples(lacking)}",
            )
        absent = sorted(
            {doc for qid in benchmark.queries for doc in benchmark.top_ranked[qid] if doc not in corpus_ids}
        )
        if absent:
            _warn(
                benchmark,
                f"{len(absent)} candidate document(s) are not in the corpus, dropped: {_examples(absent)}",
            )
            benchmark.top_ranked = {
                qid: [doc for doc in docs if doc in corpus_ids] for qid, docs in benchmark.top_ranked.items()
            }
        # A candidate listed twice would be scored twice; keep the first occurrence.
        benchmark.top_ranked = {qid: list(dict.fromkeys(docs)) for qid, docs in benchmark.top_ranked.items()}
    return benchmark
