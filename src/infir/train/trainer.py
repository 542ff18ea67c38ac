"""InF-Embed training, thin over sentence-transformers' SentenceTransformerTrainer.

Checkpoints, resume, gradient accumulation, logging, mixed precision and accelerate/torchrun
multi-GPU all come from the library. What is ours: the batch the loss receives is the raw text of
the 7 InF-IR fields (the loss builds the 3 pairs per row and the instruction swaps, and tokenises
itself), the query side is tokenised with its own max length, and the output folder records how
its query text was built (``infir_config.json``) so evaluate and search join query and
instruction exactly as training did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from torch import Tensor, nn
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from infir.data.io import write_json_atomic
from infir.data.records import INF_FIELDS, InfRecord
from infir.data.text import TextFormat, query_text
from infir.models import INFIR_CONFIG_NAME, model_label
from infir.train.config import TrainConfig
from infir.train.losses import InstructionLoss
from infir.train.modeling import LORA_ADAPTER_DIR, build_model, has_lora, merge_lora

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

TRAINING_LOG_NAME = "training_log.json"
CHECKPOINTS_DIR = "checkpoints"
_INSTRUCTION_FIELDS = ("instruction_positive", "instruction_negative")


@dataclass
class TrainResult:
    """Where the model went and how the run went."""

    model_path: Path
    log_path: Path
    global_step: int
    train_rows: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def records_dataset(records: list[InfRecord], no_instructions: bool = False) -> Dataset:
    """One column per InF-IR field; ``no_instructions`` blanks both instructions in every row."""
    from datasets import Dataset

    if not records:
        raise ValueError("no training rows")
    columns = {name: [getattr(record, name) for record in records] for name in INF_FIELDS}
    if no_instructions:
        for name in _INSTRUCTION_FIELDS:
            columns[name] = [""] * len(records)
    return Dataset.from_dict(columns)


@dataclass
class InfTextCollator:
    """Batches rows as ``{field: [B strings]}``: the loss tokenises itself (it builds the swap texts)."""

    # Read by the sentence-transformers dataloader builder; InF-IR rows carry no label column.
    valid_label_columns: list[str] = field(default_factory=list)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {name: [row[name] for row in features] for name in INF_FIELDS}


def _unwrap(model: nn.Module) -> nn.Module:
    """The SentenceTransformer behind a DDP / compiled wrapper."""
    while not hasattr(model, "preprocess"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


class QuerySideEncoder:
    """Encodes query sides ``query_text(q, i, text_format)`` truncated at the query max length.

    Given to :class:`InstructionLoss` as its ``query_encoder`` so query sides (and swaps) get
    ``max_query_length`` while passages get the model's ``max_seq_length`` (SPEC §3: 256 / 512). It
    calls whatever model the loss currently holds, so a DDP wrapper the trainer swaps in is used.
    With the attention encoder, the model itself splits the reversed template.
    """

    def __init__(self, text_format: TextFormat, max_length: int) -> None:
        self.text_format = text_format
        self.max_length = max_length
        self.loss: InstructionLoss | None = None

    def __call__(self, queries: list[str], instructions: list[str]) -> Tensor:
        if self.loss is None:
            raise RuntimeError("QuerySideEncoder is not bound to a loss")
        model = self.loss.model
        module = _unwrap(model)
        texts = [query_text(q, i, self.text_format) for q, i in zip(queries, instructions, strict=True)]
        features = module.preprocess(texts, max_length=self.max_length)
        features = {k: v.to(module.device) if isinstance(v, Tensor) else v for k, v in features.items()}
        return model(features)["sentence_embedding"]


def build_loss(model: SentenceTransformer, config: TrainConfig) -> InstructionLoss:
    encoder = QuerySideEncoder(config.text_format, config.max_query_length)
    loss = InstructionLoss(
        model,
        objective=config.objective,
        temperature=config.temperature,
        num_swaps=config.num_swaps,
        text_format=config.text_format,
        mini_batch_size=config.mini_batch_size,
        seed=config.seed,
        query_encoder=encoder,
    )
    encoder.loss = loss
    return loss


class InstructionTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer whose loss takes the raw InF-IR text batch."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        batch = {name: inputs[name] for name in INF_FIELDS}
        loss_fn = self.loss
        # As the base trainer does: hand the wrapped (DDP / compiled) model to the loss once.
        if model is self.model_wrapped and loss_fn.model is not model:
            loss_fn = self.override_model_in_loss(loss_fn, model)
        loss = loss_fn(batch)
        return (loss, {}) if return_outputs else loss

    def _load_from_checkpoint(self, checkpoint_path: str) -> None:
        if not has_lora(self.model):
            return super()._load_from_checkpoint(checkpoint_path)
        # A LoRA checkpoint holds only the adapter; load it into the peft-wrapped backbone.
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        adapter = load_file(str(Path(checkpoint_path) / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model[0].model, adapter)


class TrainingLogCallback(TrainerCallback):
    """Collects loss, lr, epoch and rows/s per logging step (written to training_log.json)."""

    def __init__(self, rows_per_step: int) -> None:
        self.rows_per_step = rows_per_step
        self.entries: list[dict[str, Any]] = []
        self._last_time = 0.0
        self._last_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time = time.perf_counter()
        self._last_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        steps = state.global_step - self._last_step
        elapsed = now - self._last_time
        self.entries.append(
            {
                "step": state.global_step,
                "epoch": logs.get("epoch"),
                "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "rows_per_second": round(steps * self.rows_per_step / elapsed, 3) if elapsed > 0 else None,
            }
        )
        self._last_time, self._last_step = now, state.global_step


def _resume_checkpoint(resume: bool | str, checkpoints: Path) -> str | None:
    if resume is False:
        return None
    if resume is True:
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if last is None:
            raise FileNotFoundError(f"{checkpoints}: no checkpoint to resume from")
        return last
    if not Path(resume).is_dir():
        raise FileNotFoundError(f"{resume}: checkpoint folder not found")
    return str(resume)


def training_arguments(config: TrainConfig, checkpoints: Path) -> SentenceTransformerTrainingArguments:
    if config.bf16 and not torch.cuda.is_available():
        raise ValueError("bf16 needs a CUDA GPU; drop --bf16 to train in float32 on this machine")
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "epoch",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.bf16,
        activation_checkpointing=config.gradient_checkpointing,
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def infir_config(config: TrainConfig, global_step: int, train_rows: int) -> dict[str, Any]:
    """What evaluate and search need to rebuild the query side, plus the run's options."""
    return {
        "text_format": config.text_format,
        "query_template": query_text("{query}", "{instruction}", config.text_format),
        "query_encoder": "instruction_query_attention" if config.attention_encoder else "pooling",
        "trust_remote_code": config.attention_encoder,
        "objective": config.objective,
        "base_model": model_label(config.model),
        "no_instructions": config.no_instructions,
        "global_step": global_step,
        "train_rows": train_rows,
        "options": config.model_dump(mode="json"),
    }


def train(
    records: list[InfRecord],
    config: TrainConfig | None = None,
    out_dir: str | Path = "model",
    model: SentenceTransformer | None = None,
) -> TrainResult:
    """Train an InF-Embed model on InF-IR rows; ``out_dir`` becomes a sentence-transformers folder.

    ``out_dir`` also holds ``infir_config.json`` (text format, objective, options), the training log
    ``training_log.json`` (loss, lr, epoch, rows/s per logging step), ``checkpoints/`` (for
    ``config.resume``) and, with LoRA, ``lora_adapter/`` (the adapter alone; the folder itself has it
    merged). ``model`` overrides building one from ``config`` (tests, notebooks).
    """
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    checkpoints = out_dir / CHECKPOINTS_DIR
    resume_from = _resume_checkpoint(config.resume, checkpoints)
    dataset = records_dataset(records, config.no_instructions)
    model = model if model is not None else build_model(config)
    loss = build_loss(model, config)
    args = training_arguments(config, checkpoints)
    log_callback = TrainingLogCallback(
        config.batch_size * config.gradient_accumulation_steps * args.world_size
    )
    trainer = InstructionTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        data_collator=InfTextCollator(),
        callbacks=[log_callback],
    )
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - started
    global_step = trainer.state.global_step

    if trainer.is_world_process_zero():
        if has_lora(model):
            merge_lora(model, out_dir / LORA_ADAPTER_DIR)
        # Concat query text is "{query} {instruction}": nothing is prefixed, so the query prompt is
        # empty. The reversed template wraps the query around a per-query instruction, which no fixed
        # prefix can express: the prompt stays empty and the template lives in infir_config.json.
        model.prompts = {**model.prompts, "query": "", "document": ""}
        model.save(str(out_dir))
        write_json_atomic(
            out_dir / TRAINING_LOG_NAME,
            {"train_rows": len(records), "seconds": round(seconds, 3), "steps": log_callback.entries},
        )
        write_json_atomic(out_dir / INFIR_CONFIG_NAME, infir_config(config, global_step, len(records)))
    return TrainResult(
        model_path=out_dir,
        log_path=out_dir / TRAINING_LOG_NAME,
        global_step=global_step,
        train_rows=len(records),
        losses=[entry["loss"] for entry in log_callback.entries],
        seconds=seconds,
    )
