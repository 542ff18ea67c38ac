"""Fixtures shared by the evaluate tests."""

from __future__ import annotations

import pytest

from infir.evaluate import retrievers


@pytest.fixture
def encode_calls(monkeypatch):
    """Counts corpus encodings (query encodings go through infir.embed directly)."""
    calls = []
    real = retrievers.encode_passages

    def spy(model, texts, **kwargs):
        calls.append(len(texts))
        return real(model, texts, **kwargs)

    monkeypatch.setattr(retrievers, "encode_passages", spy)
    return calls
