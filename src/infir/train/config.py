"""Every knob of an InF-Embed training run, validated in one place (CLI, demo and library share it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from infir.data.text import TextFormat

PoolingName = Literal["mean", "cls", "last"]


class TrainConfig(BaseModel):
    """Options of :func:`infir.train.train`; defaults follow the paper (SPEC §3–4) unless marked CPU.

    ``batch_size`` is source rows per device step (each row gives 3 pairs, M = 3B). The default 4 is
    the paper's per-device count; it is also what a 2-core CPU can afford, because the per-row cost
    of the default swap count (M/2 − 1 swaps per anchor) grows with B. Reach the paper's global 32
    rows with ``mini_batch_size`` (GradCache: same loss and gradients as one big batch) rather than
    with gradient accumulation, which does not enlarge the pool of in-batch negatives and swaps.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str | None = Field(
        None, description="backbone: local folder, hub name, or None for packaged MiniLM"
    )
    objective: str = Field("multi:P,I", description="one of infir.train.losses.OBJECTIVES")
    temperature: float = Field(0.05, gt=0)
    num_swaps: int | None = Field(None, ge=0, description="instruction swaps per anchor; None = M/2 − 1")
    text_format: TextFormat = "concat"
    pooling: PoolingName | None = Field(None, description="None keeps the model's own (decoders: last)")
    max_query_length: int = Field(256, ge=8)
    max_passage_length: int = Field(512, ge=8)
    learning_rate: float = Field(5e-5, gt=0)
    epochs: float = Field(2.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    batch_size: int = Field(4, ge=1, description="source rows per device step")
    gradient_accumulation_steps: int = Field(1, ge=1)
    mini_batch_size: int | None = Field(None, ge=1, description="GradCache mini-batch (texts)")
    seed: int = 0
    no_instructions: bool = Field(False, description="blank both instructions: the reviewers' baseline")
    lora_r: int | None = Field(None, ge=1, description="LoRA rank through peft; None = full fine-tuning")
    lora_alpha: int | None = Field(None, ge=1, description="None = 2 × lora_r")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    gradient_checkpointing: bool = False
    bf16: bool = Field(False, description="bfloat16 mixed precision (GPU only)")
    attention_encoder: bool = Field(False, description="instruction–query attention encoder (SPEC §4)")
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    logging_steps: int = Field(1, ge=1)
    save_steps: int | None = Field(None, ge=1, description="checkpoint every N steps; None = each epoch")
    save_total_limit: int | None = Field(2, ge=1)
    resume: bool | str = Field(False, description="True = latest checkpoint in out_dir, or a checkpoint path")

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        from infir.train.losses import parse_objective

        return parse_objective(value).name

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.attention_encoder and self.text_format != "reversed":
            # The attention encoder reads instruction and query apart from the reversed template
            # ("Instruct: ...\nQuery: ..."), the one format that can be split back unambiguously.
            object.__setattr__(self, "text_format", "reversed")
        return self

    @property
    def effective_lora_alpha(self) -> int | None:
        if self.lora_r is None:
            return None
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r
