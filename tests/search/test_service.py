"""The FastAPI app: request validation (a stand-in index, no model) and micro-batching."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient

from infir.search import Hit, create_app
from infir.search.service import MAX_BATCH_QUERIES, MAX_TEXT_CHARS, MicroBatcher


class RecordingIndex:
    """Answers like an Index (hit i of query q has id 'q#i') and records each batch it gets."""

    count, dimension, model_name, index_type, text_format = 50, 8, "stand-in", "flat", "concat"

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[tuple[str, str | None]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def search_batch(self, queries, instructions=None, k=10):
        self.batches.append(list(zip(queries, instructions, strict=True)))
        self.entered.set()
        assert self.release.wait(10)
        if "boom" in queries:
            raise RuntimeError("encoder failed")
        return [
            [Hit(f"{q}#{i}", 1.0 - i / 100, "", f"{q} {ins}", i + 1) for i in range(min(k, self.count))]
            for q, ins in zip(queries, instructions, strict=True)
        ]


@pytest.fixture
def client():
    index = RecordingIndex()
    with TestClient(create_app(index)) as test_client:
        test_client.index = index
        yield test_client


def test_search_and_batch_answer(client):
    response = client.post("/search", json={"query": "python", "instruction": "the snake", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert [h["id"] for h in body["hits"]] == ["python#0", "python#1", "python#2"]
    assert body["hits"][0] == {
        "id": "python#0",
        "score": 1.0,
        "title": "",
        "text": "python the snake",
        "rank": 1,
    }
    assert body["took_ms"] >= 0
    response = client.post(
        "/search/batch", json={"queries": [{"query": "a"}, {"query": "b", "instruction": "x"}], "k": 2}
    )
    assert response.status_code == 200
    assert [[h["id"] for h in r["hits"]] for r in response.json()["results"]] == [
        ["a#0", "a#1"],
        ["b#0", "b#1"],
    ]
    assert client.index.batches[-1] == [("a", None), ("b", "x")]


def test_health_and_openapi(client):
    assert client.get("/health").json() == {
        "status": "ok",
        "model": "stand-in",
        "index_size": 50,
        "dimension": 8,
        "index_type": "flat",
        "text_format": "concat",
    }
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/search/batch", "/health"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/search", {"query": ""}, "at least 1 character"),
        ("/search", {"query": "   "}, "query must not be blank"),
        ("/search", {}, "Field required"),
        ("/search", {"query": "x", "k": 0}, "greater than or equal to 1"),
        ("/search", {"query": "x", "k": 1001}, "less than or equal to 1000"),
        ("/search", {"query": "x", "k": "ten"}, "valid integer"),
        ("/search", {"query": "x" * (MAX_TEXT_CHARS + 1)}, f"at most {MAX_TEXT_CHARS} characters"),
        ("/search", {"query": "x", "instruction": "y" * (MAX_TEXT_CHARS + 1)}, "at most"),
        ("/search", {"query": "x", "instructions": "typo"}, "Extra inputs are not permitted"),
        ("/search/batch", {"queries": []}, "at least 1 item"),
        (
            "/search/batch",
            {"queries": [{"query": "x"}] * (MAX_BATCH_QUERIES + 1)},
            f"at most {MAX_BATCH_QUERIES}",
        ),
        ("/search/batch", {"queries": [{"query": "ok"}, {"query": " "}]}, "query must not be blank"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(client, path, body, message):
    response = client.post(path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text
    assert client.index.batches == []  # nothing reached the index


def test_malformed_json_is_4xx(client):
    response = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_k_above_index_size_is_capped(client):
    assert len(client.post("/search", json={"query": "x", "k": 1000}).json()["hits"]) == 50


def test_concurrent_queries_share_one_encode():
    index = RecordingIndex(hold_first=True)

    async def scenario():
        batcher = MicroBatcher(index, max_batch_size=4)
        first = asyncio.create_task(batcher.search(["q0"], [None], 2))
        assert await asyncio.to_thread(index.entered.wait, 10)  # q0 is being encoded
        rest = [asyncio.create_task(batcher.search([f"q{i}"], [f"i{i}"], i)) for i in range(1, 7)]
        await asyncio.sleep(0.05)  # q1..q6 queue up behind it
        index.release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.close()
        return results

    results = asyncio.run(scenario())
    assert [len(b) for b in index.batches] == [1, 4, 2]
    assert index.batches[1] == [(f"q{i}", f"i{i}") for i in range(1, 5)]
    requested_k = [2, 1, 2, 3, 4, 5, 6]  # one search at the batch's largest k, cut per request
    for i, [hits] in enumerate(results):
        assert [h.id for h in hits] == [f"q{i}#{j}" for j in range(requested_k[i])]


def test_a_failed_search_fails_its_requests_and_serving_goes_on():
    index = RecordingIndex()

    async def scenario():
        batcher = MicroBatcher(index, max_batch_size=1)
        with pytest.raises(RuntimeError, match="encoder failed"):
            await batcher.search(["boom"], [None], 1)
        [hits] = await batcher.search(["fine"], [None], 1)
        await batcher.close()
        return hits

    assert [h.id for h in asyncio.run(scenario())] == ["fine#0"]


@pytest.mark.slow
def test_real_index_over_the_app(fixture_index):
    with TestClient(create_app(fixture_index)) as client:
        snake = client.post(
            "/search",
            json={"query": "python", "instruction": "about the snake, not the programming language"},
        )
        language = client.post(
            "/search", json={"query": "python", "instruction": "about the programming language", "k": 2}
        )
        health = client.get("/health").json()
    assert snake.json()["hits"][0]["id"].startswith("snake-")
    assert language.json()["hits"][0]["id"].startswith("lang-") and len(language.json()["hits"]) == 2
    assert health["index_size"] == 12 and health["model"] == "default" and health["dimension"] == 384
