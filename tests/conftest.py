"""Shared test setup: offline hub, paths to the shared real data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fail fast instead of hanging on the unreachable hub; set before any HF import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real data sets beside the checkout (../shared/data); skip where a clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} does not exist (only in the dev/CI workspace)")
    return SHARED_DATA
