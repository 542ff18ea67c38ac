"""Building the model to train: backbone, pooling, decoder padding, LoRA, attention encoder.

Decoders (Qwen2.5, Llama-3.2, ...) are trained as the paper does: last-token pooling over
LEFT-padded inputs, so the last position is always a real token. LoRA goes through peft directly
(``get_peft_model`` on the backbone); the final save merges the adapter into the backbone so the
folder loads anywhere, and keeps the adapter alone beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from infir.models import load_model
from infir.train.config import TrainConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer

logger = logging.getLogger(__name__)

_POOLING_MODES = {"mean": "mean", "cls": "cls", "last": "lasttoken"}
LORA_ADAPTER_DIR = "lora_adapter"


def transformer_module(model: SentenceTransformer) -> Transformer:
    """The model's first module, which must be a sentence-transformers Transformer."""
    from sentence_transformers.sentence_transformer.modules import Transformer

    first = model[0]
    if not isinstance(first, Transformer):
        raise ValueError(f"expected a Transformer as the first module, got {type(first).__name__}")
    return first


def is_decoder(model: SentenceTransformer) -> bool:
    """A causal-LM backbone (sentence-transformers' own test: a *ForCausalLM architecture, still causal)."""
    config = transformer_module(model).config
    architectures = getattr(config, "architectures", None) or []
    return (
        bool(architectures)
        and architectures[0].endswith("ForCausalLM")
        and getattr(config, "is_causal", True)
    )


def _pooling_index(model: SentenceTransformer) -> int | None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    return next((i for i, module in enumerate(model) if isinstance(module, Pooling)), None)


def _set_module(model: SentenceTransformer, index: int, module) -> None:
    name = list(model._modules)[index]
    model._modules[name] = module


def configure_pooling(model: SentenceTransformer, pooling: str | None) -> None:
    """Set the pooling mode (mean / cls / last); None keeps the model's (last token for decoders)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    index = _pooling_index(model)
    if index is None:
        raise ValueError("the model has no Pooling module to configure")
    current = model[index]
    if pooling is None:
        if is_decoder(model) and current.pooling_mode != "lasttoken":
            logger.warning(
                "decoder backbone with %s pooling; the paper uses last-token", current.pooling_mode
            )
        return
    _set_module(
        model, index, Pooling(current.get_embedding_dimension(), pooling_mode=_POOLING_MODES[pooling])
    )


def configure_decoder(model: SentenceTransformer) -> None:
    """Left padding (the last position is a real token) and a pad token for tokenizers without one."""
    tokenizer = transformer_module(model).tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def ensure_normalized(model: SentenceTransformer) -> None:
    """Append Normalize if missing, so inference embeddings are L2-normalised like training ones."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    if not isinstance(model[len(model) - 1], Normalize):
        model.append(Normalize())


def add_lora(model: SentenceTransformer, r: int, alpha: int, dropout: float) -> None:
    """Wrap the backbone in a peft LoRA model: only adapter weights train."""
    from peft import LoraConfig, TaskType, get_peft_model

    transformer = transformer_module(model)
    config = LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=r, lora_alpha=alpha, lora_dropout=dropout)
    transformer.model = get_peft_model(transformer.model, config)


def has_lora(model: SentenceTransformer) -> bool:
    from peft import PeftModel

    return isinstance(transformer_module(model).model, PeftModel)


def merge_lora(model: SentenceTransformer, adapter_dir: str | Path | None = None) -> None:
    """Save the adapter alone (if asked), then fold it into the backbone weights."""
    transformer = transformer_module(model)
    if adapter_dir is not None:
        transformer.model.save_pretrained(str(adapter_dir))
    transformer.model = transformer.model.merge_and_unload()


def use_attention_encoder(model: SentenceTransformer) -> None:
    """Swap in the instruction–query attention encoder modules (see infir.train.attention_encoder)."""
    from infir.train.attention_encoder import (
        InstructionQueryAttentionPooling,
        InstructionSplittingTransformer,
    )

    InstructionSplittingTransformer.from_transformer(transformer_module(model))
    index = _pooling_index(model)
    if index is None:
        raise ValueError("the attention encoder needs a Pooling module to extend")
    _set_module(model, index, InstructionQueryAttentionPooling.from_pooling(model[index]))


def build_model(config: TrainConfig, device: str | None = None) -> SentenceTransformer:
    """The SentenceTransformer to train, configured from ``config``."""
    model = load_model(config.model, device=device)
    transformer = transformer_module(model)
    model.max_seq_length = config.max_passage_length
    if is_decoder(model):
        configure_decoder(model)
    configure_pooling(model, config.pooling)
    ensure_normalized(model)
    if config.attention_encoder:
        use_attention_encoder(model)
    if config.lora_r is not None:
        add_lora(model, config.lora_r, config.effective_lora_alpha, config.lora_dropout)
    logger.info(
        "model: %s, trainable parameters %d", type(transformer.model).__name__, count_trainable(model)
    )
    return model


def count_trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
