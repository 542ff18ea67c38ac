"""The instruction–query attention encoder (SPEC §4, the paper's 12th model variant).

Instruction and query are encoded separately by the one shared backbone (H_I, H_Q);
A = softmax over query tokens of H_I H_Qᵀ / √d (padding masked), and the query-side embedding is
the mean over the instruction's non-padding tokens of A·H_Q, L2-normalised by the model's
Normalize module. Passages, and query sides without an instruction, are pooled as usual.

Design: two sentence-transformers modules, so a saved folder is an ordinary sentence-transformers
model whose ``encode(text)`` does the right thing for evaluate and search:

- :class:`InstructionSplittingTransformer` (a ``Transformer``) recognises query-side texts in the
  reversed template ``"Instruct: {instruction}\\nQuery: {query}"`` (``infir.data.text.query_text``
  with ``text_format="reversed"``, which training records in ``infir_config.json``), tokenises the
  two parts apart and runs the backbone on each;
- :class:`InstructionQueryAttentionPooling` (a ``Pooling``) replaces the pooled vector of those rows
  by the attention embedding above.

The concat format ("{query} {instruction}") cannot be split back, hence the reversed template. A
passage that itself begins with "Instruct: " and contains "\\nQuery: " would be split too.

Loading: sentence-transformers ≥ 6 imports module classes outside its own namespace only with
``trust_remote_code=True``; the class here is this installed package's code, not code from the
model folder, so load with ``SentenceTransformer(path, trust_remote_code=True)`` (or
:func:`load_attention_model`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from torch import Tensor

_REVERSED_TEMPLATE = re.compile(r"\AInstruct: (?P<instruction>.*?)\nQuery: (?P<query>.*)\Z", re.DOTALL)
_INSTRUCTION_PREFIX = "instruction_"


def split_query_side(text: str) -> tuple[str | None, str]:
    """(instruction, query) of a reversed-template text; (None, text) for anything else."""
    match = _REVERSED_TEMPLATE.match(text)
    if match is None or not match["instruction"].strip():
        return None, text
    return match["instruction"], match["query"]


def instruction_query_attention(
    instruction_tokens: Tensor, instruction_mask: Tensor, query_tokens: Tensor, query_mask: Tensor
) -> Tensor:
    """e = mean over instruction tokens of softmax_q(H_I H_Qᵀ / √d) · H_Q (not yet normalised).

    Inputs: H_I [B, Li, d], mask [B, Li]; H_Q [B, Lq, d], mask [B, Lq] (1 = real token). Output [B, d].
    """
    scores = instruction_tokens @ query_tokens.transpose(1, 2) / math.sqrt(query_tokens.shape[-1])
    query_padding = ~query_mask.bool().unsqueeze(1)  # [B, 1, Lq]
    scores = scores.masked_fill(query_padding, torch.finfo(scores.dtype).min)
    attended = torch.softmax(scores, dim=-1) @ query_tokens  # [B, Li, d]
    weights = instruction_mask.unsqueeze(-1).to(attended.dtype)
    return (attended * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class InstructionSplittingTransformer(Transformer):
    """A Transformer that encodes the instruction and the query of a reversed-template text apart.

    Features of split rows gain ``instruction_input_ids`` / ``instruction_attention_mask`` (the
    instruction, tokenised alone) and ``has_instruction`` [B] bool; after the forward pass,
    ``token_embeddings`` are the query's (H_Q) and ``instruction_token_embeddings`` the
    instruction's (H_I). Texts without an instruction pass through unchanged.
    """

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs) -> dict[str, Any]:
        if not inputs or not all(isinstance(text, str) for text in inputs):
            return super().preprocess(inputs, prompt=prompt, **kwargs)
        parts = [split_query_side(text) for text in inputs]
        if all(instruction is None for instruction, _ in parts):
            return super().preprocess(inputs, prompt=prompt, **kwargs)
        features = super().preprocess([query for _, query in parts], prompt=prompt, **kwargs)
        instruction_features = super().preprocess([instruction or "" for instruction, _ in parts], **kwargs)
        for key, value in instruction_features.items():
            if isinstance(value, Tensor):
                features[_INSTRUCTION_PREFIX + key] = value
        features["has_instruction"] = torch.tensor([instruction is not None for instruction, _ in parts])
        return features

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        instruction_features = {
            key[len(_INSTRUCTION_PREFIX) :]: features.pop(key)
            for key in [k for k in features if k.startswith(_INSTRUCTION_PREFIX)]
        }
        features = super().forward(features, **kwargs)
        if instruction_features:
            instruction_features["modality"] = features.get("modality", "text")
            encoded = super().forward(instruction_features, **kwargs)
            features["instruction_token_embeddings"] = encoded[self.module_output_name]
            features["instruction_attention_mask"] = instruction_features["attention_mask"]
        return features

    @classmethod
    def from_transformer(cls, transformer: Transformer) -> InstructionSplittingTransformer:
        """Reuse a loaded Transformer's backbone and tokenizer (this class adds behaviour, no state)."""
        transformer.__class__ = cls
        return transformer  # type: ignore[return-value]


class InstructionQueryAttentionPooling(Pooling):
    """Pooling that, for rows carrying an instruction, returns the instruction–query attention embedding."""

    def forward(self, features: dict[str, Tensor | Any], **kwargs) -> dict[str, Tensor | Any]:
        features = super().forward(features, **kwargs)
        if "instruction_token_embeddings" not in features:
            return features
        attention_embedding = instruction_query_attention(
            features["instruction_token_embeddings"],
            features["instruction_attention_mask"],
            features["token_embeddings"],
            features["attention_mask"],
        )
        has_instruction = features["has_instruction"].to(attention_embedding.device).unsqueeze(-1)
        pooled = features["sentence_embedding"]
        features["sentence_embedding"] = torch.where(
            has_instruction, attention_embedding.to(pooled.dtype), pooled
        )
        return features

    @classmethod
    def from_pooling(cls, pooling: Pooling) -> InstructionQueryAttentionPooling:
        """Keep the model's pooling for passages and instruction-free queries."""
        return cls(pooling.get_embedding_dimension(), pooling_mode=pooling.pooling_mode)


def load_attention_model(path: str, device: str | None = None):
    """Load a folder saved with the attention encoder (its modules are this package's classes)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, trust_remote_code=True)
