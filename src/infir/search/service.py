"""The HTTP service: a FastAPI app factory over an open `Index`, and `serve` to run it with uvicorn."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator

from infir.search.index import Hit, Index

MAX_TEXT_CHARS = 10_000
MAX_K = 1000
MAX_BATCH_QUERIES = 100
DEFAULT_MAX_BATCH_SIZE = 32


class _Strict(BaseModel):
    # Unknown fields are refused, so a typo such as "instructions" is a 422, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class QueryIn(_Strict):
    query: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The search query.")
    instruction: str | None = Field(
        default=None, max_length=MAX_TEXT_CHARS, description="What a relevant document must satisfy."
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value


class SearchRequest(QueryIn):
    k: int = Field(default=10, ge=1, le=MAX_K, description="Hits to return (capped at the index size).")


class BatchSearchRequest(_Strict):
    queries: list[QueryIn] = Field(min_length=1, max_length=MAX_BATCH_QUERIES)
    k: int = Field(default=10, ge=1, le=MAX_K, description="Hits per query (capped at the index size).")


class HitOut(BaseModel):
    id: str
    score: float
    title: str
    text: str
    rank: int


class SearchResponse(BaseModel):
    hits: list[HitOut]
    took_ms: float


class QueryHits(BaseModel):
    hits: list[HitOut]


class BatchSearchResponse(BaseModel):
    results: list[QueryHits]
    took_ms: float


class Health(BaseModel):
    status: str
    model: str
    index_size: int
    dimension: int
    index_type: str
    text_format: str


@dataclass
class _Job:
    queries: list[str]
    instructions: list[str | None]
    k: int
    future: asyncio.Future


class MicroBatcher:
    """Groups queries that arrive while the model is busy into one encode call.

    One worker runs searches in a thread, so the event loop keeps accepting requests; when a
    search finishes it takes everything queued meanwhile (up to ``max_batch_size`` queries) as
    the next batch. Nothing waits on a timer: a lone request is searched at once. With
    ``max_batch_size=1`` it degrades to one query per encode, serialised (a plain lock).
    """

    def __init__(self, index: Index, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.index = index
        self.max_batch_size = max_batch_size
        self._pending: collections.deque[_Job] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    async def search(
        self, queries: Sequence[str], instructions: Sequence[str | None], k: int
    ) -> list[list[Hit]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (e.g. a test client per request)
            self._loop, self._wakeup = loop, asyncio.Event()
            self._worker = loop.create_task(self._run())
        job = _Job(list(queries), list(instructions), k, loop.create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = self._loop = None

    async def _run(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            jobs = [self._pending.popleft()]
            size = len(jobs[0].queries)
            while self._pending and size + len(self._pending[0].queries) <= self.max_batch_size:
                size += len(self._pending[0].queries)
                jobs.append(self._pending.popleft())
            jobs = [job for job in jobs if not job.future.done()]  # drop requests already cancelled
            if not jobs:
                continue
            try:
                results = await asyncio.to_thread(self._search, jobs)
            except Exception as exc:  # hand the failure to every waiting request, keep serving
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, hits in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(hits)

    def _search(self, jobs: list[_Job]) -> list[list[list[Hit]]]:
        queries = [q for job in jobs for q in job.queries]
        instructions = [i for job in jobs for i in job.instructions]
        all_hits = self.index.search_batch(queries, instructions, k=max(job.k for job in jobs))
        results, start = [], 0
        for job in jobs:
            results.append([hits[: job.k] for hits in all_hits[start : start + len(job.queries)]])
            start += len(job.queries)
        return results


def _hits_out(hits: list[Hit]) -> list[HitOut]:
    return [HitOut(**asdict(hit)) for hit in hits]


def create_app(index: Index, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> FastAPI:
    """A FastAPI app serving `index`: POST /search, POST /search/batch, GET /health, /docs.

    Args:
        index: an open index (the app does not close it).
        max_batch_size: most queries encoded together when requests arrive concurrently
            (1 turns micro-batching off).
    """
    batcher = MicroBatcher(index, max_batch_size)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(
        title="infir search",
        description=(
            f"Instruction-aware search over {index.count:,} documents with {index.model_name} "
            f"(query and instruction joined in the '{index.text_format}' format)."
        ),
        lifespan=lifespan,
    )

    @app.post("/search", response_model=SearchResponse, summary="Search with one query and an instruction")
    async def search(request: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        [hits] = await batcher.search([request.query], [request.instruction], request.k)
        return SearchResponse(hits=_hits_out(hits), took_ms=(time.perf_counter() - started) * 1000)

    @app.post("/search/batch", response_model=BatchSearchResponse, summary="Search with many queries")
    async def search_batch(request: BatchSearchRequest) -> BatchSearchResponse:
        started = time.perf_counter()
        results = await batcher.search(
            [q.query for q in request.queries], [q.instruction for q in request.queries], request.k
        )
        return BatchSearchResponse(
            results=[QueryHits(hits=_hits_out(hits)) for hits in results],
            took_ms=(time.perf_counter() - started) * 1000,
        )

    @app.get("/health", response_model=Health, summary="Model and index size")
    async def health() -> Health:
        return Health(
            status="ok",
            model=index.model_name,
            index_size=index.count,
            dimension=index.dimension,
            index_type=index.index_type,
            text_format=index.text_format,
        )

    return app


def serve(
    index_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    model: str | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    log_level: str = "info",
) -> None:
    """Open an index and serve it with uvicorn until interrupted (loopback only by default)."""
    import uvicorn

    with Index.open(index_dir, model=model) as index:
        uvicorn.run(
            create_app(index, max_batch_size=max_batch_size), host=host, port=port, log_level=log_level
        )
