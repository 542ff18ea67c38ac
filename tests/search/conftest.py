"""Search test fixtures: the packaged MiniLM, loaded once, and an index of the fixture corpus."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEARCH_CORPUS = FIXTURES / "search_corpus.jsonl"


@pytest.fixture(scope="session")
def minilm():
    from infir.models import load_model

    return load_model()


@pytest.fixture(scope="session")
def fixture_index_dir(minilm, tmp_path_factory) -> Path:
    """A flat index of tests/fixtures/search_corpus.jsonl (12 documents, 3 shards of 5)."""
    from infir.search import build_index

    out = tmp_path_factory.mktemp("search") / "index"
    build_index(minilm, SEARCH_CORPUS, out, model_name="default", shard_size=5, show_progress=False)
    return out


@pytest.fixture(scope="session")
def fixture_index(fixture_index_dir, minilm):
    from infir.search import Index

    with Index.open(fixture_index_dir, model=minilm) as index:
        yield index


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
