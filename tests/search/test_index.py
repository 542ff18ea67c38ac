"""Index build, search and integrity checks on the fixture corpus with the packaged MiniLM."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from infir.data.errors import InputError
from infir.search import FaissOptions, Index, InvalidIndexError, build_index, read_manifest
from tests.search.conftest import SEARCH_CORPUS

pytestmark = pytest.mark.slow

SNAKE = "about the snake, not the programming language"
LANGUAGE = "about the programming language"


def test_planted_document_comes_first(fixture_index):
    hits = fixture_index.search("can water bears live in outer space?", k=3)
    assert hits[0].id == "planted-tardigrade"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].title == "Tardigrades survive space" and "cosmic radiation" in hits[0].text
    assert hits[0].score > hits[1].score


def test_instruction_flips_the_ranking(fixture_index):
    snake_first = fixture_index.search("python", instruction=SNAKE, k=4)[0].id
    language_first = fixture_index.search("python", instruction=LANGUAGE, k=4)[0].id
    assert snake_first.startswith("snake-"), snake_first
    assert language_first.startswith("lang-"), language_first


def test_batch_equals_single_searches_and_k_is_capped(fixture_index):
    queries = ["python", "python", "volcano in Sicily"]
    instructions = [SNAKE, LANGUAGE, None]
    batch = fixture_index.search_batch(queries, instructions, k=3)
    for query, instruction, hits in zip(queries, instructions, batch, strict=True):
        single = fixture_index.search(query, instruction, k=3)
        assert [h.id for h in hits] == [h.id for h in single]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in single], atol=1e-5)
    assert len(fixture_index.search("bread", k=1000)) == 12
    with pytest.raises(ValueError, match="k must be"):
        fixture_index.search("bread", k=0)


def test_manifest_records_model_and_files(fixture_index_dir):
    manifest = read_manifest(fixture_index_dir)
    assert manifest["model"]["name"] == "default" and manifest["dimension"] == 384
    assert manifest["count"] == 12 and manifest["text_format"] == "concat"
    assert manifest["index"]["type"] == "flat" and set(manifest["files"]) == {"index.faiss", "docs.sqlite"}
    assert not (fixture_index_dir / "build.json").exists() and not (fixture_index_dir / "shards").exists()


def test_open_loads_the_manifest_model(fixture_index_dir):
    with Index.open(fixture_index_dir) as index:
        assert index.model_name == "default"
        assert index.search("can water bears live in outer space?", k=1)[0].id == "planted-tardigrade"


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_indexes_agree_on_a_small_corpus(minilm, fixture_index, tmp_path, index_type):
    out = tmp_path / index_type
    build_index(minilm, SEARCH_CORPUS, out, model_name="default", index_type=index_type, show_progress=False)
    with Index.open(out, model=minilm) as index:
        assert index.index_type == index_type
        for query in ("python", "can water bears live in outer space?", "jazz"):
            assert [h.id for h in index.search(query, k=5)] == [
                h.id for h in fixture_index.search(query, k=5)
            ]


def test_finished_index_is_not_overwritten_unless_asked(minilm, fixture_index_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(fixture_index_dir, out)
    with pytest.raises(InputError, match="already holds a finished index"):
        build_index(minilm, SEARCH_CORPUS, out, model_name="default", show_progress=False)
    report = build_index(
        minilm, SEARCH_CORPUS, out, model_name="default", overwrite=True, show_progress=False
    )
    assert report.count == 12 and report.shards_encoded == 1


def _copy(fixture_index_dir, tmp_path):
    out = tmp_path / "damaged"
    shutil.copytree(fixture_index_dir, out)
    return out


def test_missing_file_is_named(fixture_index_dir, tmp_path):
    out = _copy(fixture_index_dir, tmp_path)
    (out / "docs.sqlite").unlink()
    with pytest.raises(InvalidIndexError, match="docs.sqlite is missing") as info:
        read_manifest(out)
    assert str(out) in str(info.value)


def test_checksum_mismatch(fixture_index_dir, tmp_path):
    out = _copy(fixture_index_dir, tmp_path)
    data = bytearray((out / "index.faiss").read_bytes())
    data[-5] ^= 0xFF  # same size, one flipped byte inside a vector
    (out / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(InvalidIndexError, match="index.faiss checksum mismatch"):
        Index.open(out)


def test_count_mismatch(fixture_index_dir, minilm, tmp_path):
    out = _copy(fixture_index_dir, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["count"] = 13
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidIndexError, match="count mismatch: manifest says 13, index.faiss holds 12"):
        Index.open(out, model=minilm)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda out: (out / "manifest.json").write_text("{not json"), "manifest.json is corrupt"),
        (lambda out: (out / "manifest.json").unlink(), "not an infir index"),
        (lambda out: (out / "manifest.json").write_text('{"format": "infir-index"}'), r"corrupt \(no model"),
        (lambda out: shutil.rmtree(out), "no such index directory"),
    ],
)
def test_corrupt_or_absent(fixture_index_dir, tmp_path, damage, message):
    out = _copy(fixture_index_dir, tmp_path)
    damage(out)
    with pytest.raises(InvalidIndexError, match=message):
        Index.open(out)


def test_unfinished_build_is_reported(minilm, tmp_path):
    out = tmp_path / "partial"
    build_index(
        minilm, SEARCH_CORPUS, out, model_name="default", shard_size=5, keep_shards=True, show_progress=False
    )
    (out / "manifest.json").unlink()
    (out / "build.json").write_text("{}")  # what a killed build leaves: shards and build state
    with pytest.raises(InvalidIndexError, match=r"unfinished build \(3 shard\(s\) encoded"):
        Index.open(out)


def _other_weights(minilm):
    """The same architecture with perturbed weights: another model of equal dimension."""
    import copy

    import torch

    other = copy.deepcopy(minilm)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std())
    return other


def test_other_model_is_refused(fixture_index_dir, minilm):
    with pytest.raises(
        InvalidIndexError, match="built with model 'default'; 'the given model' embeds differently"
    ):
        Index.open(fixture_index_dir, model=_other_weights(minilm))


def test_other_dimension_is_refused(fixture_index_dir, minilm):
    import copy

    from sentence_transformers.models import Dense

    smaller = copy.deepcopy(minilm)
    smaller.append(Dense(384, 64))
    with pytest.raises(InvalidIndexError, match="384 dimensions.*64-dimensional"):
        Index.open(fixture_index_dir, model=smaller)


def test_resume_refuses_other_input(minilm, tmp_path):
    out = tmp_path / "other"
    build_index(
        minilm, SEARCH_CORPUS, out, model_name="default", shard_size=5, keep_shards=True, show_progress=False
    )
    (out / "manifest.json").unlink()
    (out / "build.json").write_text(json.dumps({"corpus_sha256": "0" * 64, "count": 12, "shard_size": 5}))
    with pytest.raises(InputError, match="unfinished build with another corpus"):
        build_index(minilm, SEARCH_CORPUS, out, model_name="default", shard_size=5, show_progress=False)
    report = build_index(
        minilm, SEARCH_CORPUS, out, overwrite=True, model_name="default", show_progress=False
    )
    assert report.shards_reused == 0


def test_faiss_options_reach_the_opened_index(minilm, tmp_path):
    out = tmp_path / "hnsw"
    options = FaissOptions(hnsw_m=8, hnsw_ef_search=77)
    build_index(
        minilm,
        SEARCH_CORPUS,
        out,
        model_name="default",
        index_type="hnsw",
        faiss_options=options,
        show_progress=False,
    )
    import faiss

    with Index.open(out, model=minilm) as index:
        assert faiss.downcast_index(index.faiss_index).hnsw.efSearch == 77
