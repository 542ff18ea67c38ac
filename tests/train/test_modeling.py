"""Model options on tiny random backbones: decoder padding/pooling, LoRA, pooling choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infir.train import TrainConfig, train
from infir.train.modeling import LORA_ADAPTER_DIR, build_model, count_trainable, has_lora, is_decoder


def test_encoder_pooling_option_and_normalize(tiny_encoder_path):
    model = build_model(TrainConfig(model=str(tiny_encoder_path), pooling="cls"), device="cpu")
    assert not is_decoder(model)
    assert model[1].pooling_mode == "cls"
    assert type(model[len(model) - 1]).__name__ == "Normalize"
    vectors = model.encode(["one", "two words"], convert_to_tensor=True)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_decoder_gets_last_token_pooling_and_left_padding(tiny_decoder_path):
    model = build_model(TrainConfig(model=str(tiny_decoder_path)), device="cpu")
    assert is_decoder(model)
    assert model[1].pooling_mode == "lasttoken"
    features = model.preprocess(["a", "a much longer text than the first"])
    # Left padding: every row ends in a real token, so last-token pooling reads a real token.
    assert bool(features["attention_mask"][:, -1].all())
    assert not bool(features["attention_mask"][0, 0])


def test_lora_trains_only_adapter_parameters(tiny_decoder_path):
    model = build_model(TrainConfig(model=str(tiny_decoder_path), lora_r=4), device="cpu")
    assert has_lora(model)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert count_trainable(model) < sum(p.numel() for p in model.parameters()) / 10


@pytest.mark.slow
def test_decoder_lora_run_saves_merged_folder_and_adapter(inf_rows, tiny_decoder_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(tiny_decoder_path), device="cpu")
    config = TrainConfig(
        model=str(tiny_decoder_path),
        lora_r=4,
        max_steps=3,
        learning_rate=1e-2,
        gradient_checkpointing=True,
        max_query_length=32,
    )
    result = train(inf_rows, config, tmp_path / "decoder")

    assert result.global_step == 3
    assert (result.model_path / LORA_ADAPTER_DIR / "adapter_config.json").is_file()
    loaded = SentenceTransformer(str(result.model_path), device="cpu")
    assert not has_lora(loaded)  # merged: loads without peft or the base folder
    assert loaded.tokenizer.padding_side == "left"
    assert loaded[1].pooling_mode == "lasttoken"
    texts = ["how long to boil an egg", "capital of australia"]
    trained, original = loaded.encode(texts), base.encode(texts, normalize_embeddings=True)
    assert np.allclose(np.linalg.norm(trained, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(trained, original, atol=1e-4)  # the adapter changed the weights


@pytest.mark.slow
def test_lora_resume_loads_the_adapter_checkpoint(inf_rows, tiny_decoder_path, tmp_path):
    out = tmp_path / "decoder"
    config = TrainConfig(
        model=str(tiny_decoder_path), lora_r=4, max_steps=1, save_steps=1, max_query_length=32
    )
    train(inf_rows, config, out)
    resumed = train(inf_rows, config.model_copy(update={"max_steps": 2, "resume": True}), out)
    assert resumed.global_step == 2
