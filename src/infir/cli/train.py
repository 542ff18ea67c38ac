"""CLI commands of infir.train (registered by infir.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from infir.cli.common import console, user_errors


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the main app."""
    app.command("train")(train_command)


def train_command(
    data: str = typer.Option(
        ..., "--data", help="InF-IR rows: JSONL, Parquet, local dataset folder or hub name"
    ),
    out: Path = typer.Option(..., "--out", help="output folder (a sentence-transformers model)"),
    model: str | None = typer.Option(None, "--model", help="backbone (default: packaged all-MiniLM-L6-v2)"),
    loss: str = typer.Option("multi:P,I", "--loss", help="objective, e.g. multi:P,I, uni:P, multi:P,I,IQ"),
    epochs: float = typer.Option(2.0, "--epochs"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="stop after N optimiser steps"),
    batch_size: int = typer.Option(4, "--batch-size", help="source rows per step (3 pairs each)"),
    gradient_accumulation_steps: int = typer.Option(1, "--gradient-accumulation-steps"),
    lr: float = typer.Option(5e-5, "--lr"),
    temperature: float = typer.Option(0.05, "--temperature"),
    num_swaps: int | None = typer.Option(None, "--num-swaps", help="swaps per anchor (default M/2-1)"),
    text_format: str = typer.Option("concat", "--text-format", help="concat | reversed"),
    pooling: str | None = typer.Option(None, "--pooling", help="mean | cls | last (default: the model's)"),
    max_query_length: int = typer.Option(256, "--max-query-length"),
    max_passage_length: int = typer.Option(512, "--max-passage-length"),
    no_instructions: bool = typer.Option(
        False, "--no-instructions", help="baseline: same pairs, no instructions"
    ),
    mini_batch_size: int | None = typer.Option(None, "--mini-batch-size", help="GradCache mini-batch size"),
    lora_r: int | None = typer.Option(None, "--lora-r", help="LoRA rank (peft); default full fine-tuning"),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 mixed precision (GPU only)"),
    attention_encoder: bool = typer.Option(False, "--attention-encoder", help="instruction-query attention"),
    save_steps: int | None = typer.Option(
        None, "--save-steps", help="checkpoint every N steps (default: epoch)"
    ),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="continue from the latest checkpoint in OUT"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="count and skip bad rows"),
    split: str = typer.Option("msmarco", "--split", help="split of a hub dataset"),
) -> None:
    """Train an InF-Embed model on InF-IR rows."""
    from infir.data import load_records
    from infir.train import TrainConfig, train

    with user_errors():
        records, skipped = load_records(data, split=split, skip_invalid=skip_invalid)
        if skipped.count:
            console.print(
                f"[yellow]skipped {skipped.count} invalid row(s)[/yellow]; first: {skipped.errors[0]}"
            )
        config = TrainConfig(
            model=model,
            objective=loss,
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            learning_rate=lr,
            temperature=temperature,
            num_swaps=num_swaps,
            text_format=text_format,
            pooling=pooling,
            max_query_length=max_query_length,
            max_passage_length=max_passage_length,
            no_instructions=no_instructions,
            mini_batch_size=mini_batch_size,
            lora_r=lora_r,
            gradient_checkpointing=gradient_checkpointing,
            bf16=bf16,
            attention_encoder=attention_encoder,
            save_steps=save_steps,
            seed=seed,
            resume=resume,
        )
        console.print(f"training on {len(records)} rows, objective {config.objective}")
        result = train(records, config, out)
    losses = result.losses
    if losses:
        console.print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} over {result.global_step} steps")
    console.print(f"model saved to [bold]{result.model_path}[/bold] (log: {result.log_path})")
