"""CLI commands of infir.search: `infir index`, `infir search`, `infir serve`."""

from __future__ import annotations

from pathlib import Path

import typer

from infir.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app."""
    app.command("index")(index_command)
    app.command("search")(search_command)
    app.command("serve")(serve_command)


def index_command(
    corpus: Path = typer.Option(
        ..., "--corpus", help="BEIR folder, BEIR corpus.jsonl, or JSONL of {id, title?, text}."
    ),
    out: Path = typer.Option(..., "--out", help="Index folder to write (a killed build resumes here)."),
    model: str = typer.Option(
        "default", "--model", help="Model folder or hub name (default: packaged MiniLM)."
    ),
    index_type: str = typer.Option("flat", "--index", help="flat (exact), hnsw or ivf (approximate)."),
    shard_size: int = typer.Option(2048, "--shard-size", help="Passages encoded per saved shard."),
    batch_size: int = typer.Option(64, "--batch-size", help="Encoder batch size."),
    keep_shards: bool = typer.Option(False, "--keep-shards", help="Keep shard files after the build."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an index or other build in --out."),
) -> None:
    """Encode a corpus into a searchable index folder (faiss + documents + manifest)."""
    from infir.search import build_index

    with user_errors():
        report = build_index(
            model,
            corpus,
            out,
            shard_size=shard_size,
            index_type=index_type,
            batch_size=batch_size,
            keep_shards=keep_shards,
            overwrite=overwrite,
        )
    console.print(
        f"indexed {report.count:,} documents ({report.dimension} dims, {report.index_type}) "
        f"into {report.out_dir}: "
        f"encoded {report.shards_encoded} shard(s), kept {report.shards_reused} from an earlier run; "
        f"encoding {report.encode_seconds:.1f}s, total {report.total_seconds:.1f}s"
    )


def search_command(
    index_dir: Path = typer.Option(..., "--index", help="Index folder built by `infir index`."),
    query: str = typer.Option(..., "--query", help="The search query."),
    instruction: str | None = typer.Option(
        None, "--instruction", help="What a relevant document must satisfy."
    ),
    k: int = typer.Option(10, "--k", min=1, help="Number of hits."),
    model: str | None = typer.Option(None, "--model", help="Model to use (default: the index's own)."),
) -> None:
    """Search an index from the terminal and print the hits as a table."""
    from rich.table import Table

    from infir.search import Index

    with user_errors(), Index.open(index_dir, model=model) as index:
        hits = index.search(query, instruction=instruction, k=k)
    table = Table(title=f"{query!r}" + (f" + {instruction!r}" if instruction else ""))
    for column in ("rank", "score", "id", "title", "text"):
        # ids and texts wrap rather than being cut: an id must stay copyable
        table.add_column(column, overflow="ellipsis" if column == "title" else "fold")
    for hit in hits:
        text = hit.text if len(hit.text) <= 200 else hit.text[:199] + "…"
        table.add_row(str(hit.rank), f"{hit.score:.4f}", hit.id, hit.title, text)
    console.print(table)


def serve_command(
    index_dir: Path = typer.Option(..., "--index", help="Index folder built by `infir index`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    model: str | None = typer.Option(None, "--model", help="Model to use (default: the index's own)."),
    max_batch_size: int = typer.Option(
        32, "--max-batch", min=1, help="Most concurrent queries encoded together."
    ),
) -> None:
    """Serve an index over HTTP (POST /search, POST /search/batch, GET /health, /docs)."""
    from infir.search import serve

    console.print(f"loading {index_dir} and serving it on http://{host}:{port} (API docs at /docs)")
    with user_errors():
        serve(index_dir, host, port, model=model, max_batch_size=max_batch_size)
