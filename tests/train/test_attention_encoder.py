"""The instruction–query attention encoder: the formula, the modules, training and reloading."""

from __future__ import annotations

import math

import pytest
import torch

from infir.data.text import query_text
from infir.models import read_infir_config
from infir.train import TrainConfig, train
from infir.train.attention_encoder import instruction_query_attention, load_attention_model, split_query_side
from infir.train.modeling import build_model


def test_split_reads_the_reversed_template_only():
    assert split_query_side(query_text("capital", "Name the seat", "reversed")) == (
        "Name the seat",
        "capital",
    )
    assert split_query_side("capital Name the seat") == (None, "capital Name the seat")
    assert split_query_side("a passage") == (None, "a passage")


def test_attention_matches_a_direct_computation_and_ignores_padding():
    torch.manual_seed(0)
    h_i, h_q = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    mask_i = torch.tensor([[1, 1, 0], [1, 1, 1]])
    mask_q = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    result = instruction_query_attention(h_i, mask_i, h_q, mask_q)
    assert result.shape == (2, 4)

    # Row 0 by hand: real instruction tokens 0..1, real query tokens 0..2.
    expected = torch.stack(
        [torch.softmax(h_i[0, t] @ h_q[0, :3].T / math.sqrt(4), dim=-1) @ h_q[0, :3] for t in range(2)]
    ).mean(dim=0)
    assert torch.allclose(result[0], expected, atol=1e-6)

    # Padding positions carry no weight: changing them leaves the embedding unchanged.
    h_i2, h_q2 = h_i.clone(), h_q.clone()
    h_i2[0, 2], h_q2[0, 3:] = 100.0, -100.0
    assert torch.allclose(instruction_query_attention(h_i2, mask_i, h_q2, mask_q)[0], result[0], atol=1e-6)


def test_model_encodes_queries_by_attention_and_passages_as_before(tiny_encoder_path):
    plain = build_model(TrainConfig(model=str(tiny_encoder_path)), device="cpu")
    attention = build_model(TrainConfig(model=str(tiny_encoder_path), attention_encoder=True), device="cpu")
    query_side = query_text("capital of australia", "Name the seat of government.", "reversed")
    texts = [query_side, "Canberra is the capital."]

    vectors = attention.encode(texts, convert_to_tensor=True)
    assert vectors.shape == (2, 32)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
    baseline = plain.encode(texts, convert_to_tensor=True)
    assert torch.allclose(vectors[1], baseline[1], atol=1e-5)  # passages: the model's own pooling
    assert not torch.allclose(vectors[0], baseline[0], atol=1e-3)  # query side: attention embedding


@pytest.mark.slow
def test_attention_encoder_trains_saves_and_reloads(inf_rows, tiny_encoder_path, tmp_path):
    config = TrainConfig(
        model=str(tiny_encoder_path),
        attention_encoder=True,
        max_steps=6,
        learning_rate=1e-3,
        max_query_length=32,
    )
    assert config.text_format == "reversed"
    result = train(inf_rows, config, tmp_path / "attention")
    assert result.losses[-1] < result.losses[0]

    saved = read_infir_config(result.model_path)
    assert saved["text_format"] == "reversed"
    assert saved["query_encoder"] == "instruction_query_attention"
    assert saved["trust_remote_code"] is True

    model = load_attention_model(str(result.model_path), device="cpu")
    assert type(model[0]).__name__ == "InstructionSplittingTransformer"
    text = query_text("capital of australia", "Name the seat of government.", "reversed")
    vector = model.encode([text], convert_to_tensor=True)
    assert vector.shape == (1, 32)
    assert torch.allclose(vector.norm(dim=-1), torch.ones(1), atol=1e-5)
