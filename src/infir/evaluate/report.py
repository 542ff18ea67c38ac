"""What `infir eval` hands back: a rich table, a JSON document, TREC run files, a bar chart.

JSON layout (everything the run measured)::

    {"metadata": {"date", "machine", "versions", "depth", "measures"},
     "models": {label: {"model", "resolved", "text_format", "kind"}},
     "benchmarks": {name: {"source", "headline", "follows_instructions", "reranks_candidates",
                           "queries", "documents", "warnings"}},
     "results": {benchmark: {model: {"p_mrr" (x100, null for BEIR), "p_mrr_per_query",
                                     "headline", "headline_og", "og", "changed",
                                     "per_query": {"og", "changed"}, "text_format", "seconds",
                                     "corpus_from_cache"}}}}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from infir.data.io import atomic_path, write_json_atomic
from infir.data.trec import write_run
from infir.evaluate.runner import EvalReport, ModelResult

MAIN_MEASURE = "nDCG@10"


def _cell(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def render_table(report: EvalReport) -> Table:
    """One row per model; per benchmark: p-MRR, the og headline metric, nDCG@10 og/changed."""
    table = Table(title="infir eval", show_lines=False)
    table.add_column("model", style="bold")
    columns: list[tuple[str, str]] = []  # (benchmark, what)
    for name, summary in report.benchmarks.items():
        if summary.follows_instructions:
            columns.append((name, "p_mrr"))
            table.add_column(f"{name}\np-MRR", justify="right")
        if summary.headline != MAIN_MEASURE:
            columns.append((name, "headline"))
            table.add_column(f"{name}\n{summary.headline} og", justify="right")
        columns.append((name, "main_og"))
        table.add_column(
            f"{name}\n{MAIN_MEASURE}{' og' if summary.follows_instructions else ''}", justify="right"
        )
        if summary.follows_instructions:
            columns.append((name, "main_changed"))
            table.add_column(f"{name}\n{MAIN_MEASURE} changed", justify="right")
    for label in report.models:
        row = [label]
        for name, what in columns:
            result = report.results[name].get(label)
            if result is None:
                row.append("-")
            elif what == "p_mrr":
                row.append(_cell(result.p_mrr, digits=1))
            elif what == "headline":
                row.append(_cell(result.metrics_og.get(report.benchmarks[name].headline)))
            elif what == "main_og":
                row.append(_cell(result.metrics_og.get(MAIN_MEASURE)))
            else:
                row.append(_cell((result.metrics_changed or {}).get(MAIN_MEASURE)))
        table.add_row(*row)
    return table


def _result_json(result: ModelResult, headline: str) -> dict:
    return {
        "p_mrr": result.p_mrr,
        "p_mrr_per_query": result.p_mrr_per_query,
        "headline": headline,
        "headline_og": result.metrics_og.get(headline),
        "og": result.metrics_og,
        "changed": result.metrics_changed,
        "per_query": {"og": result.per_query_og, "changed": result.per_query_changed},
        "text_format": result.text_format,
        "seconds": round(result.seconds, 3),
        "corpus_from_cache": result.corpus_from_cache,
    }


def report_to_json(report: EvalReport) -> dict:
    """The whole report as plain JSON types (see the module docstring for the layout)."""
    return {
        "metadata": {**report.metadata, "measures": list(report.measures)},
        "models": report.models,
        "benchmarks": {
            name: {k: v for k, v in asdict(s).items() if k != "name"} for name, s in report.benchmarks.items()
        },
        "results": {
            name: {
                label: _result_json(result, report.benchmarks[name].headline)
                for label, result in per_model.items()
            }
            for name, per_model in report.results.items()
        },
    }


def _file_safe(name: str) -> str:
    # Hub names carry "/"; keep file names to one path component of safe characters.
    return re.sub(r"[^A-Za-z0-9._#-]+", "__", name).strip("_") or "model"


def write_runs(report: EvalReport, folder: str | Path) -> list[Path]:
    """TREC run files: <folder>/<benchmark>/<model>.og.trec and .changed.trec (BEIR: <model>.trec)."""
    folder = Path(folder)
    written = []
    for name, per_model in report.results.items():
        for label, result in per_model.items():
            base = folder / _file_safe(name) / _file_safe(label)
            tag = _file_safe(label)
            if result.run_changed is None:
                written.append(write_run(base.with_name(base.name + ".trec"), result.run_og, tag=tag))
            else:
                written.append(write_run(base.with_name(base.name + ".og.trec"), result.run_og, tag=tag))
                written.append(
                    write_run(base.with_name(base.name + ".changed.trec"), result.run_changed, tag=tag)
                )
    return written


def plot_report(report: EvalReport, path: str | Path) -> Path:
    """Grouped bar chart (PNG): p-MRR per instruction benchmark, and each benchmark's og headline."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(report.models)
    instruction_sets = [n for n, s in report.benchmarks.items() if s.follows_instructions]
    panels: list[tuple[str, list[str], Callable[[ModelResult, str], float | None]]] = []
    if instruction_sets:
        panels.append(("p-MRR (x100)", instruction_sets, lambda r, n: r.p_mrr))
    panels.append(
        (
            "og headline metric",
            list(report.benchmarks),
            lambda r, n: r.metrics_og.get(report.benchmarks[n].headline),
        )
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    width = 0.8 / max(len(labels), 1)
    for axis, (title, names, value_of) in zip(axes[0], panels, strict=True):
        positions = np.arange(len(names))
        for i, label in enumerate(labels):
            values = [
                value_of(report.results[n][label], n) if label in report.results[n] else None for n in names
            ]
            axis.bar(positions + i * width, [np.nan if v is None else v for v in values], width, label=label)
        axis.set_xticks(positions + width * (len(labels) - 1) / 2)
        axis.set_xticklabels(
            [n if title.startswith("p-MRR") else f"{n}\n{report.benchmarks[n].headline}" for n in names]
        )
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_title(title)
    axes[0][-1].legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path, mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
    return path


def write_outputs(
    report: EvalReport,
    json_path: str | Path | None = None,
    runs_dir: str | Path | None = None,
    plot_path: str | Path | None = None,
) -> list[Path]:
    """Write whichever of the JSON report, TREC runs and PNG chart were asked for."""
    written: list[Path] = []
    if json_path is not None:
        written.append(write_json_atomic(json_path, report_to_json(report)))
    if runs_dir is not None:
        written.extend(write_runs(report, runs_dir))
    if plot_path is not None:
        written.append(plot_report(report, plot_path))
    return written
