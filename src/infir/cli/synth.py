"""CLI commands of infir.synth (registered by infir.cli).

``infir synth --pairs PATH --out FILE ...`` runs the pipeline; ``infir synth export-batch`` /
``import-batch`` drive the offline batch backend; ``infir synth review-export`` / ``review-import``
the human check of a sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from infir.cli.common import console, err_console, user_errors

synth_app = typer.Typer(
    help="Synthesize InF-IR rows from (query, passage) pairs with an LLM (SPEC §2).",
    no_args_is_help=False,
)


@synth_app.callback(invoke_without_command=True)
def synth(
    ctx: typer.Context,
    pairs: Path | None = typer.Option(None, help="BEIR folder or JSONL of {query, passage}."),
    out: Path | None = typer.Option(
        None, help="Output JSONL of kept rows (rejected rows and stats go beside)."
    ),
    llm: str = typer.Option("local", help="Backend: openai (any OpenAI-compatible server), local, batch."),
    model: str | None = typer.Option(
        None, help="Generator model (local: a folder or .gguf; default SmolLM2)."
    ),
    base_url: str | None = typer.Option(
        None, help="API root for --llm openai, e.g. http://localhost:8000/v1."
    ),
    api_key: str | None = typer.Option(
        None, help="API key (default: $INFIR_LLM_API_KEY or $OPENAI_API_KEY)."
    ),
    judge_model: str | None = typer.Option(None, help="Validator model (default: the generator)."),
    concurrency: int = typer.Option(8, help="Requests in flight at once."),
    timeout: float | None = typer.Option(None, help="Seconds per HTTP try (--llm openai; default 120)."),
    limit: int | None = typer.Option(None, help="Synthesize a seeded sample of this many pairs."),
    seed: int = typer.Option(0, help="Sampling seed (pairs, and the LLM seed parameter)."),
    resume: bool = typer.Option(False, help="Carry on from the existing journal."),
    journal: Path | None = typer.Option(None, help="Journal path (default: OUT.journal.sqlite)."),
    split: str | None = typer.Option(None, help="BEIR qrels split (default: train, or the only one)."),
    max_parse_retries: int = typer.Option(
        2, help="Re-asks after a malformed reply before rejecting the row."
    ),
    json_mode: bool = typer.Option(False, help="Send response_format=json_object (OpenAI, vLLM, llama.cpp)."),
    lenient_replies: bool = typer.Option(False, help="Accept plain-text replies (small local models)."),
    prompts: str = typer.Option("v1", help="Prompt version, or a folder of your own templates."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run the synthesis pipeline (subcommands: export-batch, import-batch, review-export, review-import)."""
    if ctx.invoked_subcommand is not None:
        return
    if pairs is None or out is None:
        err_console.print(
            "[red]error:[/red] --pairs and --out are required (or name a subcommand; see --help)"
        )
        raise typer.Exit(2)
    from infir.synth.pipeline import default_paths, synthesize_files

    with user_errors():
        stats = synthesize_files(
            pairs, out, llm=llm, model=model, base_url=base_url, api_key=api_key, judge_model=judge_model,
            concurrency=concurrency, timeout=timeout, split=split, journal_path=journal, resume=resume,
            limit=limit, seed=seed, max_parse_retries=max_parse_retries, json_mode=json_mode,
            lenient_replies=lenient_replies, prompt_version=prompts, show_progress=progress,
        )  # fmt: skip
    paths = default_paths(out)
    console.print(
        f"kept {stats.kept} · rejected {stats.rejected} · pending {stats.pending} of {stats.pairs} pairs "
        f"(yield {100 * stats.yield_rate:.1f}%) · {stats.requests} requests · "
        f"{stats.prompt_tokens + stats.completion_tokens} tokens"
    )
    if stats.rejection_reasons:
        console.print("rejections: " + json.dumps(stats.rejection_reasons))
    console.print(f"rows: {out} · rejected: {paths['rejected']} · stats: {paths['stats']}")
    if stats.pending:
        journal_path = journal or paths["journal"]
        console.print(
            f"{stats.journal.get('calls_pending', 0)} requests pending: "
            f"infir synth export-batch --journal {journal_path} --out requests.jsonl, submit it, then "
            f"infir synth import-batch --journal {journal_path} --responses output.jsonl; "
            "then run this command again with --resume"
        )


@synth_app.command("export-batch")
def export_batch_command(
    journal: Path = typer.Option(..., help="The run's journal (OUT.journal.sqlite)."),
    out: Path = typer.Option(..., help="Batch API request JSONL to write."),
) -> None:
    """Write every pending request as OpenAI Batch API JSONL."""
    from infir.synth.batch import export_batch

    with user_errors():
        if not journal.is_file():
            raise FileNotFoundError(f"no journal at {journal}")
        written = export_batch(journal, out)
    if not written:
        console.print("nothing pending")
    for path in written:
        console.print(f"wrote {path}")


@synth_app.command("import-batch")
def import_batch_command(
    journal: Path = typer.Option(..., help="The run's journal (OUT.journal.sqlite)."),
    responses: Path = typer.Option(..., help="Batch API output JSONL."),
) -> None:
    """Store a Batch API output file's replies in the journal; then run synth again with --resume."""
    from infir.synth.batch import import_batch

    with user_errors():
        if not journal.is_file():
            raise FileNotFoundError(f"no journal at {journal}")
        report = import_batch(journal, responses)
    console.print(json.dumps(report.to_dict(), indent=2))


@synth_app.command("review-export")
def review_export_command(
    rows: Path = typer.Option(..., help="Kept rows of a synthesis run."),
    out: Path = typer.Option(..., help="Review file to write: .csv or .jsonl."),
    n: int = typer.Option(100, help="Rows in the sample."),
    seed: int = typer.Option(0, help="Sampling seed."),
    rejected: Path | None = typer.Option(None, help="Also sample rows rejected at validation."),
) -> None:
    """Write a blind sample for human review, with an empty yes/no column per judge check."""
    from infir.synth.review import export_review, review_questions

    with user_errors():
        count = export_review(rows, out, n=n, seed=seed, rejected_path=rejected)
    console.print(f"wrote {count} rows to {out}; answer each column yes/no:")
    for column, question in review_questions().items():
        console.print(f"  {column}: {question}")


@synth_app.command("review-import")
def review_import_command(
    review: Path = typer.Option(..., help="The filled review file."),
    rows: list[Path] = typer.Option(..., help="Synthesis output(s) with the judge's verdicts (repeatable)."),
    out: Path | None = typer.Option(None, help="Also write the agreement report as JSON."),
) -> None:
    """Report agreement between human and judge verdicts."""
    from infir.data.io import write_json_atomic
    from infir.synth.review import format_review_report, import_review

    with user_errors():
        report = import_review(review, rows)
    console.print(format_review_report(report))
    if out is not None:
        write_json_atomic(out, report)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app."""
    app.add_typer(synth_app, name="synth")
