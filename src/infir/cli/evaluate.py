"""CLI commands of infir.evaluate (registered by infir.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from infir.cli.common import console, err_console, user_errors
from infir.data.text import TEXT_FORMATS


def eval_command(
    model: list[str] = typer.Option(
        ...,
        "--model",
        "-m",
        help="Model: folder, hub name, 'default' (packaged MiniLM) or 'bm25'. Repeatable.",
    ),
    benchmark: list[str] = typer.Option(
        ...,
        "--benchmark",
        "-b",
        help="FollowIR-layout or BEIR folder, hub-layout folder, or robust04/news21/core17. Repeatable.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report as JSON here."),
    runs: Path | None = typer.Option(None, "--runs", help="Write TREC run files under this folder."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a bar chart PNG here."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Encoding batch size."),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="Corpus embedding cache [default: $INFIR_CACHE_DIR/embeddings or ~/.cache/infir/embeddings].",
    ),
    text_format: str | None = typer.Option(
        None, "--text-format", help=f"Query text format {TEXT_FORMATS} [default: each model's own]."
    ),
    depth: int = typer.Option(1000, "--depth", min=1, help="Run depth when ranking the full corpus."),
    headline: str | None = typer.Option(
        None, "--headline", help="Override the headline metric, e.g. nDCG@10."
    ),
) -> None:
    """Evaluate models on instruction-following (p-MRR) and standard retrieval benchmarks."""
    from infir.evaluate import evaluate, render_table, write_outputs

    with user_errors():
        if text_format is not None and text_format not in TEXT_FORMATS:
            raise ValueError(f"--text-format must be one of {TEXT_FORMATS}, got {text_format!r}")
        report = evaluate(
            model,
            benchmark,
            batch_size=batch_size,
            cache_dir=cache_dir,
            text_format=text_format,  # type: ignore[arg-type]
            depth=depth,
            headline=headline,
            show_progress=True,
            on_step=lambda step: err_console.print(f"[dim]evaluating {step}[/dim]"),
        )
        written = write_outputs(report, json_path=json_out, runs_dir=runs, plot_path=plot)
    console.print(render_table(report))
    for name, summary in report.benchmarks.items():
        for warning in summary.warnings:
            err_console.print(f"[yellow]warning[/yellow] {name}: {warning}")
    for path in written:
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app."""
    app.command("eval")(eval_command)
