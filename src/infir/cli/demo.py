"""`infir demo`: the main job end to end on the embedded defaults (registered by infir.cli)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infir.cli.common import console, user_errors


def demo_command(
    out: Path = typer.Option(Path("demo-output"), "--out", help="where every step writes (reused next time)"),
    synth_pairs: int = typer.Option(2, help="pairs synthesized by the LLM (the local one is slow)"),
    train_steps: int = typer.Option(40, help="training steps of the demo model"),
    batch_size: int = typer.Option(4, help="source rows per training step"),
    llm: str | None = typer.Option(
        None, help="openai|local; default: openai when INFIR_LLM_BASE_URL and INFIR_LLM_MODEL are set"
    ),
    seed: int = typer.Option(0),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
) -> None:
    """Synthesize -> train -> evaluate -> search on the shipped demo data, offline."""
    from infir.demo import DemoConfig, run_demo

    config = DemoConfig(
        out_dir=out,
        synth_pairs=synth_pairs,
        train_steps=train_steps,
        batch_size=batch_size,
        llm=llm,
        seed=seed,
        show_progress=not no_progress,
    )
    with user_errors():
        result = run_demo(config, say=lambda line: console.print(f"[bold cyan]>[/bold cyan] {line}"))
    console.print(result.table)
    example = result.search_example
    console.print(f"\nOne instructed search: [bold]{example['query']}[/bold]")
    for which, entry in example["results"].items():
        table = Table(title=f"{which}: {entry['instruction']}", title_justify="left")
        for column in ("rank", "id", "score", "title", "relevant"):
            table.add_column(column)
        for rank, hit in enumerate(entry["hits"], start=1):
            table.add_row(
                str(rank), hit["id"], f"{hit['score']:.3f}", hit["title"], "yes" if hit["relevant"] else ""
            )
        console.print(table)
    console.print("\nWhere everything went:")
    for name, path in result.outputs.items():
        console.print(f"  {name:12s} {path}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
