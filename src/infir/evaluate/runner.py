"""Evaluate models on benchmarks: runs with both instructions, p-MRR, standard metrics (SPEC §5).

For an instruction-following benchmark each query is run twice, with ``query + instruction_og``
and ``query + instruction_changed``; the og run is scored against the og qrels, the changed run
against the changed qrels, and the pair gives p-MRR over the documents the changed instruction
made non-relevant. A BEIR benchmark gets one run of the bare queries and standard metrics only.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from infir.data.followir import Benchmark, load_benchmark
from infir.data.text import TextFormat
from infir.evaluate.metrics import Run, changed_documents, p_mrr, standard_metrics
from infir.evaluate.retrievers import DEFAULT_DEPTH, BM25Retriever, DenseRetriever, Retriever, make_retriever
from infir.models import resolve_model_name

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "nDCG@5", "MAP@1000", "R@100", "MRR@10")
_VERSIONED = (
    "infir",
    "torch",
    "sentence-transformers",
    "transformers",
    "faiss-cpu",
    "bm25s",
    "pytrec_eval-terrier",
)


@dataclass
class ModelResult:
    """One model on one benchmark.

    Attributes:
        metrics_og: measure -> mean over queries of the og run against the og qrels (for a BEIR
            benchmark: the bare-query run against its qrels).
        metrics_changed: the same for the changed run against the changed qrels; None for BEIR.
        per_query_og / per_query_changed: qid -> measure -> value.
        p_mrr: x100; None for BEIR.
        p_mrr_per_query: qid -> p-MRR x100 (queries with changed documents only).
        run_og / run_changed: the runs themselves, for TREC files.
        corpus_from_cache: True when the corpus embeddings came from the disk cache (dense only).
    """

    model: str
    label: str
    text_format: str
    metrics_og: dict[str, float]
    per_query_og: dict[str, dict[str, float]]
    run_og: Run
    metrics_changed: dict[str, float] | None = None
    per_query_changed: dict[str, dict[str, float]] | None = None
    run_changed: Run | None = None
    p_mrr: float | None = None
    p_mrr_per_query: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    corpus_from_cache: bool | None = None


@dataclass
class BenchmarkSummary:
    """What a report says about a benchmark besides the scores."""

    name: str
    source: str
    headline: str
    follows_instructions: bool
    reranks_candidates: bool
    queries: int
    documents: int
    warnings: list[str]


@dataclass
class EvalReport:
    """Everything `infir eval` measured: results[benchmark][model label] -> ModelResult."""

    benchmarks: dict[str, BenchmarkSummary]
    results: dict[str, dict[str, ModelResult]]
    models: dict[str, dict[str, str]]
    measures: tuple[str, ...]
    metadata: dict


def _unique_labels(retriever_labels: Sequence[str]) -> list[str]:
    # Two checkpoints both called "model" must not overwrite each other in the results.
    seen: dict[str, int] = {}
    labels = []
    for label in retriever_labels:
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return labels


def run_benchmark(
    retriever: Retriever,
    benchmark: Benchmark,
    measures: Sequence[str] = DEFAULT_MEASURES,
    depth: int = DEFAULT_DEPTH,
    model: str = "",
    label: str | None = None,
) -> ModelResult:
    """Index `benchmark`'s corpus with `retriever`, run its queries, and score the runs."""
    started = time.perf_counter()
    measures = tuple(dict.fromkeys([*measures, benchmark.headline]))
    retriever.index(benchmark.corpus)
    qids = benchmark.query_ids
    queries = [benchmark.queries[qid] for qid in qids]
    result_label = label or retriever.label
    if not benchmark.follows_instructions:
        run = retriever.search(qids, queries, None, benchmark.top_ranked, depth)
        metrics, per_query = standard_metrics(benchmark.qrels_og, run, measures)
        return ModelResult(
            model=model or result_label,
            label=result_label,
            text_format=retriever.text_format,
            metrics_og=metrics,
            per_query_og=per_query,
            run_og=run,
            seconds=time.perf_counter() - started,
            corpus_from_cache=getattr(retriever, "last_index_from_cache", None),
        )
    assert benchmark.qrels_changed is not None
    run_og = retriever.search(
        qids, queries, [benchmark.instructions_og[q] for q in qids], benchmark.top_ranked, depth
    )
    run_changed = retriever.search(
        qids, queries, [benchmark.instructions_changed[q] for q in qids], benchmark.top_ranked, depth
    )
    metrics_og, per_query_og = standard_metrics(benchmark.qrels_og, run_og, measures)
    metrics_changed, per_query_changed = standard_metrics(benchmark.qrels_changed, run_changed, measures)
    pairwise = p_mrr(run_og, run_changed, changed_documents(benchmark.qrels_og, benchmark.qrels_changed))
    return ModelResult(
        model=model or result_label,
        label=result_label,
        text_format=retriever.text_format,
        metrics_og=metrics_og,
        per_query_og=per_query_og,
        run_og=run_og,
        metrics_changed=metrics_changed,
        per_query_changed=per_query_changed,
        run_changed=run_changed,
        p_mrr=pairwise.p_mrr,
        p_mrr_per_query=pairwise.per_query,
        seconds=time.perf_counter() - started,
        corpus_from_cache=getattr(retriever, "last_index_from_cache", None),
    )


def _versions() -> dict[str, str]:
    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def evaluate(
    models: Sequence[str],
    benchmarks: Sequence[str | Path | Benchmark],
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    text_format: TextFormat | None = None,
    depth: int = DEFAULT_DEPTH,
    headline: str | None = None,
    show_progress: bool = False,
    device: str | None = None,
    on_step: Callable[[str], None] | None = None,
) -> EvalReport:
    """Evaluate every model on every benchmark.

    Args:
        models: sentence-transformers folders or hub names, ``default`` (packaged MiniLM), folders
            trained by infir, or ``bm25``.
        benchmarks: FollowIR-layout folders, BEIR folders, hub-layout folders, ``robust04`` /
            ``news21`` / ``core17`` (hub, needs internet), or loaded `Benchmark` objects.
        measures: standard measures reported for every run (the headline is always added).
        batch_size: encoding batch size for dense models.
        cache_dir: corpus-embedding cache (default `~/.cache/infir/embeddings`, or
            `$INFIR_CACHE_DIR/embeddings`).
        text_format: force a query text format for every model; default: each model's own.
        depth: run depth over the full corpus (benchmarks with candidates score all of them).
        headline: override every benchmark's headline metric.
        show_progress: progress bars while encoding.
        device: torch device for dense models.
        on_step: called with a one-line description before each (model, benchmark) pair.

    Returns:
        EvalReport with results[benchmark][model label].
    """
    if not models:
        raise ValueError("no model given")
    if not benchmarks:
        raise ValueError("no benchmark given")
    # Load and validate every benchmark before any model: bad data fails in seconds, not after encoding.
    loaded = [b if isinstance(b, Benchmark) else load_benchmark(b, headline=headline) for b in benchmarks]
    if headline:
        for benchmark in loaded:
            benchmark.headline = headline
    names = _unique_labels([b.name for b in loaded])
    for benchmark, name in zip(loaded, names, strict=True):
        benchmark.name = name

    results: dict[str, dict[str, ModelResult]] = {b.name: {} for b in loaded}
    model_info: dict[str, dict[str, str]] = {}
    labels: list[str] = []
    for model in models:
        retriever = make_retriever(
            model,
            text_format=text_format,
            batch_size=batch_size,
            cache_dir=cache_dir,
            show_progress=show_progress,
            device=device,
        )
        label = _unique_labels([*labels, retriever.label])[-1]
        labels.append(retriever.label)
        model_info[label] = {
            "model": model,
            "resolved": "bm25s" if isinstance(retriever, BM25Retriever) else resolve_model_name(model),
            "text_format": retriever.text_format,
            "kind": "dense" if isinstance(retriever, DenseRetriever) else "lexical",
        }
        for benchmark in loaded:
            if on_step:
                on_step(f"{label} on {benchmark.name} ({len(benchmark.corpus)} documents)")
            results[benchmark.name][label] = run_benchmark(
                retriever, benchmark, measures, depth, model=model, label=label
            )
        del retriever  # free the model before loading the next one

    summaries = {
        b.name: BenchmarkSummary(
            name=b.name,
            source=b.source,
            headline=b.headline,
            follows_instructions=b.follows_instructions,
            reranks_candidates=b.top_ranked is not None,
            queries=len(b.queries),
            documents=len(b.corpus),
            warnings=list(b.warnings),
        )
        for b in loaded
    }
    return EvalReport(
        benchmarks=summaries,
        results=results,
        models=model_info,
        measures=tuple(measures),
        metadata={
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "versions": _versions(),
            "depth": depth,
        },
    )
