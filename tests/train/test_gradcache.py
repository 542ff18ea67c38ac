"""Gradient caching (mini_batch_size) gives the plain path's loss and parameter gradients."""

from __future__ import annotations

import pytest
import torch

from infir.data.records import INF_FIELDS
from infir.train.losses import InstructionLoss


@pytest.fixture
def tiny_model(tiny_encoder_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(str(tiny_encoder_path), max_seq_length=64)
    return SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu")


@pytest.fixture
def batch(inf_rows) -> dict[str, list[str]]:
    return {field: [getattr(row, field) for row in inf_rows[:2]] for field in INF_FIELDS}


def _loss_and_grads(model, batch, objective, mini_batch_size, scale=1.0, seed=0):
    model.zero_grad(set_to_none=True)
    loss_fn = InstructionLoss(model, objective, mini_batch_size=mini_batch_size, seed=seed)
    torch.manual_seed(seed)  # same dropout draws for both paths
    loss = loss_fn(batch)
    (loss * scale).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _assert_same(plain, cached):
    (plain_loss, plain_grads), (cached_loss, cached_grads) = plain, cached
    assert cached_loss.item() == pytest.approx(plain_loss.item(), rel=1e-5)
    assert plain_grads.keys() == cached_grads.keys() and len(plain_grads) > 0
    for name, grad in plain_grads.items():
        # Per tensor, relative to its norm: float32 sums over differently split mini-batches differ in
        # the last bits, and some gradients are exactly 0 in theory (key biases) but noise in practice.
        error = (cached_grads[name] - grad).norm().item()
        assert error <= 1e-4 * grad.norm().item() + 1e-7, f"{name}: |cached - plain| = {error:.3g}"


@pytest.mark.parametrize("objective", ["multi:P,I", "uni:P,I,IQ"])
def test_cached_equals_plain_with_small_mini_batches(tiny_model, batch, objective):
    """Mini-batches of 2 texts (6 pairs, swaps besides); the outer scale reaches every mini-batch, as a
    gradient-accumulation division or an fp16 loss scaler would."""
    tiny_model.eval()
    plain = _loss_and_grads(tiny_model, batch, objective, None, scale=3.0)
    cached = _loss_and_grads(tiny_model, batch, objective, 2, scale=3.0)
    _assert_same(plain, cached)


def test_cached_replays_dropout(tiny_model, batch):
    """With dropout on, the re-embedding pass must replay the first pass's RNG (else its gradients
    belong to other embeddings). One mini-batch per column consumes the RNG as the plain path does."""
    tiny_model.train()
    plain = _loss_and_grads(tiny_model, batch, "multi:P,I", None)
    cached = _loss_and_grads(tiny_model, batch, "multi:P,I", 1000)
    _assert_same(plain, cached)


def test_cached_without_grad_returns_the_loss(tiny_model, batch):
    tiny_model.eval()
    with torch.no_grad():
        plain = InstructionLoss(tiny_model, mini_batch_size=None)(batch)
        cached = InstructionLoss(tiny_model, mini_batch_size=2)(batch)
    assert cached.item() == pytest.approx(plain.item(), rel=1e-5)
    assert InstructionLoss(tiny_model, mini_batch_size=2).uses_gradient_cache
    assert not InstructionLoss(tiny_model).uses_gradient_cache


def test_cached_blank_instructions(tiny_model, batch):
    """No swap survives blank instructions; the cached path must not trip over the empty swap column."""
    tiny_model.eval()
    batch = {**batch, "instruction_positive": [""] * 2, "instruction_negative": [""] * 2}
    _assert_same(
        _loss_and_grads(tiny_model, batch, "multi:P,I", None),
        _loss_and_grads(tiny_model, batch, "multi:P,I", 2),
    )
