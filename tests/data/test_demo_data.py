"""The shipped demo data sets load with infir's own readers and keep the promises their docs make."""

from __future__ import annotations

import json

import pytest

from infir.data import load_records
from infir.data.beir import read_corpus, read_qrels, read_queries
from infir.data.demo import demo_benchmark_path, demo_pairs_path, demo_train_path
from infir.data.records import Pair


@pytest.fixture(scope="module")
def train_records():
    records, skipped = load_records(demo_train_path())
    assert not skipped.errors, [str(error) for error in skipped.errors]
    return records


@pytest.fixture(scope="module")
def benchmark():
    folder = demo_benchmark_path()
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(folder / "queries.jsonl", extra_fields=("instruction_og", "instruction_changed"))
    qrels_og = read_qrels(folder / "qrels" / "og.tsv")
    qrels_changed = read_qrels(folder / "qrels" / "changed.tsv")
    return corpus, queries, qrels_og, qrels_changed


def test_train_set_has_40_valid_rows_with_unique_ids(train_records):
    assert len(train_records) == 40
    ids = [record.extra["id"] for record in train_records]
    assert ids == [f"demo-{n:03d}" for n in range(1, 41)]


def test_train_rows_are_poisoned_not_copied(train_records):
    for record in train_records:
        row_id = record.extra["id"]
        assert record.instruction_negative != record.instruction_positive, row_id
        assert record.query_negative != record.query_positive, row_id
        passages = {
            record.document_positive,
            record.hard_negative_document_1,
            record.hard_negative_document_2,
        }
        assert len(passages) == 3, f"{row_id}: a hard negative repeats another passage"


def test_train_queries_are_distinct(train_records):
    queries = [record.query_positive for record in train_records]
    assert len(set(queries)) == len(queries)


def test_benchmark_has_16_queries_and_80_documents(benchmark):
    corpus, queries, _, _ = benchmark
    assert len(queries) == 16
    assert len(corpus) == 80
    for query_id, query in queries.items():
        assert query["instruction_og"] != query["instruction_changed"], query_id


def test_benchmark_qrels_point_at_existing_queries_and_documents(benchmark):
    corpus, queries, qrels_og, qrels_changed = benchmark
    for qrels in (qrels_og, qrels_changed):
        assert set(qrels) == set(queries)
        for judgments in qrels.values():
            assert set(judgments) <= set(corpus)
    # Each document is a candidate of exactly one query, judged under both instructions.
    judged = [doc_id for judgments in qrels_og.values() for doc_id in judgments]
    assert sorted(judged) == sorted(corpus)
    assert {q: set(d) for q, d in qrels_og.items()} == {q: set(d) for q, d in qrels_changed.items()}


def test_every_query_has_documents_the_changed_instruction_excludes(benchmark):
    _, queries, qrels_og, qrels_changed = benchmark
    for query_id in queries:
        relevant_og = {doc for doc, score in qrels_og[query_id].items() if score > 0}
        relevant_changed = {doc for doc, score in qrels_changed[query_id].items() if score > 0}
        assert len(relevant_og) >= 2, query_id
        assert relevant_og - relevant_changed, f"{query_id}: the changed instruction excludes nothing"
        # The changed instruction narrows the og one: it never makes a new document relevant.
        assert relevant_changed <= relevant_og, query_id
        assert len(qrels_og[query_id]) - len(relevant_og) >= 1, f"{query_id}: no distractor"


def test_benchmark_is_held_out_from_the_training_and_synthesis_texts(benchmark, train_records):
    corpus, _, _, _ = benchmark
    train_texts = " ".join(
        text for record in train_records for text in record.model_dump().values() if isinstance(text, str)
    )
    pair_texts = demo_pairs_path().read_text(encoding="utf-8")
    for doc_id, document in corpus.items():
        assert document.text not in train_texts, doc_id
        assert document.text not in pair_texts, doc_id


def test_pairs_are_12_unique_valid_pairs():
    lines = demo_pairs_path().read_text(encoding="utf-8").splitlines()
    pairs = [Pair.model_validate(json.loads(line)) for line in lines if line.strip()]
    assert len(pairs) == 12
    assert len({pair.query for pair in pairs}) == 12
    assert len({pair.passage for pair in pairs}) == 12
    assert len({pair.query_id for pair in pairs}) == 12
    assert len({pair.passage_id for pair in pairs}) == 12
