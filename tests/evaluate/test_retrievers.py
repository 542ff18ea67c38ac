from pathlib import Path

import numpy as np
import pytest

from infir.data.beir import Document
from infir.data.followir import read_followir
from infir.data.text import query_text
from infir.evaluate.retrievers import (
    BM25Retriever,
    DenseRetriever,
    corpus_fingerprint,
    default_cache_dir,
    make_retriever,
    model_fingerprint,
)

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "followir_mini"


@pytest.fixture(scope="module")
def bench():
    return read_followir(MINI)


@pytest.fixture(scope="module")
def minilm():
    from infir.models import load_model

    return load_model("default", device="cpu")


def _queries(bench):
    qids = bench.query_ids
    return qids, [bench.queries[q] for q in qids], [bench.instructions_og[q] for q in qids]


# ------------------------------------------------------------------ BM25 (fast)
def test_bm25_full_corpus_and_candidates(bench):
    bm25 = BM25Retriever()
    bm25.index(bench.corpus)
    qids, queries, instructions = _queries(bench)
    full = bm25.search(qids, queries, instructions, None, k=7)
    assert all(len(docs) == 7 for docs in full.values())
    expected = bm25.scores(query_text(queries[0], instructions[0]))
    best = np.argsort(-expected, kind="stable")[:3]
    assert {bm25.doc_ids[i] for i in best} <= set(full["q1"])
    reranked = bm25.search(qids, queries, instructions, bench.top_ranked)
    assert {q: set(d) for q, d in reranked.items()} == {q: set(bench.top_ranked[q]) for q in qids}
    assert reranked["q1"]["d01"] == pytest.approx(float(expected[bm25.doc_ids.index("d01")]))


def test_bm25_query_with_no_known_token_scores_zero(bench):
    bm25 = BM25Retriever()
    bm25.index(bench.corpus)
    run = bm25.search(["q"], ["zzzz qqqq"], None, {"q": ["d01", "d02"]})
    assert run == {"q": {"d01": 0.0, "d02": 0.0}}
    with pytest.raises(RuntimeError, match="index"):
        BM25Retriever().search(["q"], ["x"])


def test_make_retriever_names_bm25():
    assert isinstance(make_retriever("bm25"), BM25Retriever)
    assert make_retriever("BM25", text_format="reversed").text_format == "reversed"


# ------------------------------------------------------------------ cache keys (fast)
def test_corpus_fingerprint_sees_text_and_order():
    a = {"1": Document("1", "t", "x"), "2": Document("2", "", "y")}
    assert corpus_fingerprint(a) == corpus_fingerprint(dict(a))
    assert corpus_fingerprint(a) != corpus_fingerprint({"2": a["2"], "1": a["1"]})
    assert corpus_fingerprint(a) != corpus_fingerprint({**a, "2": Document("2", "", "y!")})


def test_model_fingerprint_changes_when_weights_change(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"1234")
    first = model_fingerprint(folder)
    assert model_fingerprint(folder) == first
    weights.write_bytes(b"123456")
    assert model_fingerprint(folder) != first
    assert model_fingerprint("org/some-model") != model_fingerprint("org/other-model")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("INFIR_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    monkeypatch.delenv("INFIR_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "infir" / "embeddings"


# ------------------------------------------------------------------ dense (loads MiniLM)
@pytest.mark.slow
def test_faiss_full_corpus_equals_numpy_ranking(bench, minilm, tmp_path):
    dense = DenseRetriever("default", cache_dir=tmp_path, model=minilm)
    dense.index(bench.corpus)
    qids, queries, instructions = _queries(bench)
    run = dense.search(qids, queries, instructions, None, k=10)
    vectors = minilm.encode([d.full_text for d in bench.corpus.values()], normalize_embeddings=True)
    texts = [query_text(q, i) for q, i in zip(queries, instructions, strict=True)]
    query_vectors = minilm.encode(texts, normalize_embeddings=True)
    for qid, vector in zip(qids, query_vectors, strict=True):
        scores = vectors @ vector
        expected = [dense.doc_ids[i] for i in np.argsort(-scores)[:10]]
        got = [d for d, _ in sorted(run[qid].items(), key=lambda item: -item[1])]
        assert got == expected
        for doc_id, score in run[qid].items():
            assert score == pytest.approx(float(scores[dense.doc_ids.index(doc_id)]), abs=1e-5)


@pytest.mark.slow
def test_top_ranked_restricts_candidates(bench, minilm, tmp_path):
    dense = DenseRetriever("default", cache_dir=tmp_path, model=minilm)
    dense.index(bench.corpus)
    qids, queries, instructions = _queries(bench)
    run = dense.search(qids, queries, instructions, bench.top_ranked)
    assert {q: set(d) for q, d in run.items()} == {q: set(bench.top_ranked[q]) for q in qids}
    full = dense.search(qids, queries, instructions, None)
    assert all(len(docs) == len(bench.corpus) for docs in full.values())
    assert run["q1"]["d01"] == pytest.approx(full["q1"]["d01"], abs=1e-6)


@pytest.mark.slow
def test_corpus_embeddings_are_cached_per_model_and_corpus(bench, minilm, tmp_path, encode_calls):
    first = DenseRetriever("default", cache_dir=tmp_path, model=minilm)
    first.index(bench.corpus)
    assert encode_calls == [30] and not first.last_index_from_cache
    second = DenseRetriever("default", cache_dir=tmp_path, model=minilm)
    second.index(bench.corpus)
    assert encode_calls == [30] and second.last_index_from_cache
    np.testing.assert_array_equal(first.vectors, second.vectors)
    edited = {**bench.corpus, "d01": Document("d01", "", "a different text")}
    second.index(edited)
    assert encode_calls == [30, 30] and not second.last_index_from_cache
    uncached = DenseRetriever("default", cache_dir=tmp_path / "off", use_cache=False, model=minilm)
    uncached.index(bench.corpus)
    assert encode_calls == [30, 30, 30] and not (tmp_path / "off").exists()
