"""The InF-IR synthesis pipeline: (query, passage) pairs in, validated InF-IR rows out (SPEC §2).

Rows run concurrently (many in flight, bounded by `rows_in_flight`; the client bounds requests);
within a row the stages run in the paper's order, the two independent halves of a stage (I- and
Q-; HN1 and HN2) side by side. Every model call goes through the journal, so a restart repeats
no finished call, and every finished row is journaled, so a restart writes exactly the rows of an
uninterrupted run, in input order.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infir.data.io import write_json_atomic, write_jsonl_atomic
from infir.data.records import InfRecord, Pair
from infir.synth import stages
from infir.synth.batch import RequestDeferred
from infir.synth.journal import Journal, call_key, row_key
from infir.synth.llm.base import LLMClient, LLMError, Message
from infir.synth.prompts import DEFAULT_PROMPT_VERSION, PromptSet, load_prompts

# Reply length caps per template: enough for a strong model's answer, small enough that a weak
# local model cannot ramble for minutes.
DEFAULT_MAX_TOKENS: dict[str, int] = {
    "instruction": 160,
    "poison_instruction": 160,
    "poison_query": 64,
    "hard_negative": 400,
    "judge_satisfies": 200,
    "judge_plausible": 160,
}
RETRY_PROMPT = (
    "Your reply could not be used: {error}. Answer again with only the JSON object, "
    "in exactly the format asked for."
)


class RowPending(Exception):
    """A row waits for a deferred (batch) request; it finishes in a later run."""


class StageFailed(Exception):
    """A row cannot go on: the stage, a reason code and the detail go into the rejected file."""

    def __init__(self, stage: str, reason: str, detail: str):
        super().__init__(f"{stage}: {reason}: {detail}")
        self.stage, self.reason, self.detail = stage, reason, detail


class JournalConflict(ValueError):
    """A journal exists for this output and --resume was not given."""


def default_paths(out_path: str | Path) -> dict[str, Path]:
    """Where the journal, rejected rows and stats of an output file go by default (beside it)."""
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix == ".jsonl" else out_path
    return {
        "journal": Path(f"{stem}.journal.sqlite"),
        "rejected": Path(f"{stem}.rejected.jsonl"),
        "stats": Path(f"{stem}.stats.json"),
    }


def select_pairs(pairs: Sequence[Pair], limit: int | None, seed: int) -> list[tuple[int, Pair]]:
    """(input index, pair) for the pairs to synthesise: all, or a seeded sample of `limit`, in input order."""
    indices = range(len(pairs))
    if limit is not None and limit < len(pairs):
        indices = sorted(random.Random(seed).sample(indices, limit))
    return [(i, pairs[i]) for i in indices]


@dataclass
class SynthStats:
    """The final (and checkpointed) report of a run; `to_dict()` is what the stats JSON holds."""

    prompt_version: str
    generator_model: str
    judge_model: str
    pairs: int = 0
    kept: int = 0
    rejected: int = 0
    pending: int = 0
    stage_yield: dict[str, dict[str, int]] = field(default_factory=dict)
    rejection_reasons: dict[str, int] = field(default_factory=dict)
    failed_checks: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    journal_hits: int = 0
    deferred: int = 0
    malformed_replies: int = 0
    request_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    clients: dict[str, dict] = field(default_factory=dict)
    journal: dict[str, Any] = field(default_factory=dict)
    estimated_cost_usd: float | None = None
    seconds: float = 0.0

    @property
    def yield_rate(self) -> float:
        """Kept rows over finished rows."""
        done = self.kept + self.rejected
        return self.kept / done if done else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "yield": round(self.yield_rate, 4)}


async def _first_error_in_order(*awaitables: Awaitable) -> list:
    """Await all; then raise the first exception in argument order (never the first in time)."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


class _Run:
    """One pipeline run: the clients, journal, prompts and counters the rows share."""

    def __init__(
        self,
        generator: LLMClient,
        judge: LLMClient,
        journal: Journal,
        prompts: PromptSet,
        *,
        seed: int,
        max_parse_retries: int,
        temperature: float,
        judge_temperature: float,
        max_tokens: Mapping[str, int],
        json_mode: bool,
        lenient_replies: bool,
    ):
        self.generator, self.judge, self.journal, self.prompts = generator, judge, journal, prompts
        self.seed, self.max_parse_retries = seed, max_parse_retries
        self.temperature, self.judge_temperature = temperature, judge_temperature
        self.max_tokens, self.json_mode, self.lenient_replies = dict(max_tokens), json_mode, lenient_replies
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        # Everything that decides a row's outcome; a finished row is reused only under the same.
        self.config = {
            "prompt_version": prompts.version, "generator_model": generator.model,
            "judge_model": judge.model, "max_parse_retries": max_parse_retries,
            "temperature": temperature, "judge_temperature": judge_temperature,
            "max_tokens": self.max_tokens, "json_mode": json_mode, "lenient_replies": lenient_replies,
        }  # fmt: skip

    # ---------------------------------------------------------------- one model call
    async def call(
        self, key: str, stage: str, client: LLMClient, messages: list[Message], params: dict
    ) -> str:
        """The reply text for `key`: from the journal, or from the client (then journaled at once)."""
        stored = self.journal.get_reply(key)
        if stored is not None:
            self.counts["journal_hits"] += 1
            return stored.text
        self.in_flight += 1
        try:
            reply = await client.complete(messages, **params)
        except RequestDeferred:
            self.journal.record_pending(key, stage, client.model, messages, params)
            self.counts["deferred"] += 1
            raise RowPending(stage) from None
        except LLMError as err:
            self.counts["request_failures"] += 1
            raise StageFailed(stage, "request_failed", str(err)) from None
        finally:
            self.in_flight -= 1
        self.journal.record_reply(key, stage, client.model, messages, params, reply)
        self.counts["requests"] += 1
        self.counts["prompt_tokens"] += reply.prompt_tokens
        self.counts["completion_tokens"] += reply.completion_tokens
        return reply.text

    def asker(self, role: str) -> stages.Ask:
        client = self.generator if role == "generator" else self.judge
        base_temperature = self.temperature if role == "generator" else self.judge_temperature

        async def ask(stage, template, variables, schema, differs_from=None):
            prompt = self.prompts[template].render(**variables)
            messages, errors = prompt, []
            for attempt in range(self.max_parse_retries + 1):
                params: dict[str, Any] = {
                    # A re-ask must not get the same answer: warmer sampling and another seed.
                    "temperature": round(min(1.0, base_temperature + 0.2 * attempt), 3),
                    "max_tokens": self.max_tokens[template],
                    "seed": self.seed + attempt,
                }
                if self.json_mode:
                    params["response_format"] = {"type": "json_object"}
                inputs = {"template": template, "variables": variables}
                key = call_key(stage, self.prompts.version, inputs, client.model, attempt)
                text = await self.call(key, stage, client, messages, params)
                try:
                    parsed = stages.parse_reply(text, schema, lenient=self.lenient_replies)
                    if differs_from is not None and _normalised(next(iter(parsed.model_dump().values()))) == (
                        _normalised(differs_from)
                    ):
                        raise stages.MalformedReply("identical to the text it should edit")
                    return parsed
                except stages.MalformedReply as err:
                    self.counts["malformed_replies"] += 1
                    errors.append(f"attempt {attempt + 1}: {err}")
                    retry = RETRY_PROMPT.format(error=err)
                    messages = [
                        *prompt,
                        {"role": "assistant", "content": text},
                        {"role": "user", "content": retry},
                    ]
            raise StageFailed(stage, "malformed_reply", " | ".join(errors)[-1000:])

        return ask

    # ---------------------------------------------------------------- one row
    def row_key(self, pair: Pair) -> str:
        return row_key(pair.model_dump(), self.config)

    def synth_id(self, pair: Pair) -> str:
        return hashlib.sha256(f"{pair.query}\x00{pair.passage}".encode()).hexdigest()[:16]

    def _provenance(self, pair: Pair) -> dict:
        return {
            "synth_id": self.synth_id(pair), "source_query_id": pair.query_id,
            "source_passage_id": pair.passage_id, "generator_model": self.generator.model,
            "judge_model": self.judge.model, "prompt_version": self.prompts.version,
        }  # fmt: skip

    async def row(self, pair: Pair) -> dict | None:
        """A finished row's outcome ({"status": "kept"|"rejected", "row": {...}}), or None while pending."""
        key = self.row_key(pair)
        stored = self.journal.get_row(key)
        if stored is not None:
            self.counts["rows_from_journal"] += 1
            return stored
        generate, judge = self.asker("generator"), self.asker("judge")
        fields: dict[str, str] = {"query_positive": pair.query, "document_positive": pair.passage}
        verdicts: dict[str, dict] = {}
        try:
            fields["instruction_positive"] = await stages.write_instruction(generate, pair)
            fields["instruction_negative"], fields["query_negative"] = await _first_error_in_order(
                stages.poison_instruction(generate, pair, fields["instruction_positive"]),
                stages.poison_query(generate, pair, fields["instruction_positive"]),
            )
            hard_negatives = await _first_error_in_order(
                stages.write_hard_negative(
                    generate, "hard_negative_1", pair.query, fields["instruction_negative"], pair.passage
                ),
                stages.write_hard_negative(
                    generate, "hard_negative_2", fields["query_negative"], fields["instruction_positive"],
                    pair.passage,
                ),
            )  # fmt: skip
            fields["hard_negative_document_1"], fields["hard_negative_document_2"] = hard_negatives
            verdicts = await stages.validate(judge, fields)
        except RowPending:
            return None
        except StageFailed as failure:
            stage = "validate" if failure.stage.startswith("validate:") else failure.stage
            outcome = self._rejected(pair, fields, verdicts, stage, failure.reason, failure.detail)
            if failure.reason != "request_failed":  # a failed request is retried by the next run
                self.journal.record_row(key, outcome)
            return outcome
        failed = [name for name, verdict in verdicts.items() if not verdict["passed"]]
        if failed:
            outcome = self._rejected(
                pair, fields, verdicts, "validate", "validation_failed", "failed checks: " + ", ".join(failed)
            )
        else:
            record = InfRecord(**fields, **self._provenance(pair), verdicts=verdicts)
            outcome = {"status": "kept", "row": record.to_dict()}
        self.journal.record_row(key, outcome)
        return outcome

    def _rejected(self, pair, fields, verdicts, stage, reason, detail) -> dict:
        row = {**self._provenance(pair), "stage": stage, "reason": reason, "detail": detail, **fields}
        if verdicts:
            row["verdicts"] = verdicts
        return {"status": "rejected", "row": row}


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def _stage_of(outcome: dict) -> str | None:
    return outcome["row"]["stage"] if outcome["status"] == "rejected" else None


def _fill_stats(stats: SynthStats, outcomes: Sequence[dict | None], run: _Run) -> None:
    reached = Counter()
    passed = Counter()
    reasons: Counter[str] = Counter()
    failed_checks: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome is None:
            continue
        stop = _stage_of(outcome)
        for stage in stages.STAGES:
            reached[stage] += 1
            if stage == stop:
                break
            passed[stage] += 1
        if outcome["status"] == "rejected":
            row = outcome["row"]
            reasons[f"{row['stage']}:{row['reason']}"] += 1
            for name, verdict in (row.get("verdicts") or {}).items():
                if not verdict["passed"]:
                    failed_checks[name] += 1
    stats.kept = sum(1 for o in outcomes if o is not None and o["status"] == "kept")
    stats.rejected = sum(1 for o in outcomes if o is not None and o["status"] == "rejected")
    stats.pending = sum(1 for o in outcomes if o is None)
    stats.stage_yield = {s: {"reached": reached[s], "passed": passed[s]} for s in stages.STAGES}
    stats.rejection_reasons = dict(reasons.most_common())
    stats.failed_checks = dict(failed_checks.most_common())
    for name in ("requests", "journal_hits", "deferred", "malformed_replies", "request_failures",
                 "prompt_tokens", "completion_tokens"):  # fmt: skip
        setattr(stats, name, run.counts[name])
    clients = {"generator": run.generator} | ({"judge": run.judge} if run.judge is not run.generator else {})
    stats.clients = {role: c.stats.as_dict() for role, c in clients.items() if hasattr(c, "stats")}
    stats.journal = run.journal.counts()
    stats.estimated_cost_usd = _journal_cost(run.journal, clients.values())


def _journal_cost(journal: Journal, clients) -> float | None:
    """Cost of every finished call in the journal (all runs), at the prices the clients know."""
    prices = {}
    for client in clients:
        usage = getattr(client, "stats", None)
        if usage is not None and usage.price_in_per_1m is not None and usage.price_out_per_1m is not None:
            prices[client.model] = (usage.price_in_per_1m, usage.price_out_per_1m)
    if not prices:
        return None
    total = 0.0
    for model, (prompt_tokens, completion_tokens) in journal.tokens_by_model().items():
        if model in prices:
            total += (prompt_tokens * prices[model][0] + completion_tokens * prices[model][1]) / 1e6
    return round(total, 6)


def _write_outputs(
    outcomes, out_path: Path, rejected_path: Path, stats_path: Path, stats: SynthStats
) -> None:
    write_jsonl_atomic(out_path, (o["row"] for o in outcomes if o is not None and o["status"] == "kept"))
    write_jsonl_atomic(
        rejected_path, (o["row"] for o in outcomes if o is not None and o["status"] == "rejected")
    )
    write_json_atomic(stats_path, stats.to_dict())


def _check_journal(journal: Journal, settings: dict, resume: bool) -> None:
    stored = journal.get_setting("run")
    if stored is None:
        journal.set_setting("run", settings)
        return
    if resume:
        journal.set_setting("run", settings)
        return
    changed = sorted(k for k in settings.keys() | stored.keys() if settings.get(k) != stored.get(k))
    if not changed:
        raise JournalConflict(
            f"journal {journal.path} holds an earlier run of this same job: pass --resume (resume=True) "
            "to carry on from it, or delete it to start over"
        )
    raise JournalConflict(
        f"journal {journal.path} belongs to a different run (differs in: {', '.join(changed)}); pass "
        "--resume to reuse its matching calls anyway, or give another --journal, or delete it"
    )


def _progress_line(run: _Run, outcomes, clients) -> dict:
    in_flight = sum(getattr(getattr(c, "stats", None), "in_flight", 0) for c in clients) or run.in_flight
    return {
        "kept": sum(1 for o in outcomes if o is not None and o["status"] == "kept"),
        "rejected": sum(1 for o in outcomes if o is not None and o["status"] == "rejected"),
        "in_flight": in_flight,
        "tokens": run.counts["prompt_tokens"] + run.counts["completion_tokens"],
    }


async def synthesize_async(
    pairs: Sequence[Pair],
    generator: LLMClient,
    out_path: str | Path,
    *,
    judge: LLMClient | None = None,
    journal_path: str | Path | None = None,
    rejected_path: str | Path | None = None,
    stats_path: str | Path | None = None,
    resume: bool = False,
    limit: int | None = None,
    seed: int = 0,
    max_parse_retries: int = 2,
    prompt_version: str | Path = DEFAULT_PROMPT_VERSION,
    temperature: float = 0.7,
    judge_temperature: float = 0.0,
    max_tokens: Mapping[str, int] | None = None,
    json_mode: bool = False,
    lenient_replies: bool = False,
    rows_in_flight: int | None = None,
    checkpoint_every_s: float = 30.0,
    show_progress: bool = False,
) -> SynthStats:
    """Turn (query, passage) pairs into InF-IR rows; see `synthesize` for the arguments."""
    paths = default_paths(out_path)
    out_path = Path(out_path)
    journal_path = Path(journal_path or paths["journal"])
    rejected_path = Path(rejected_path or paths["rejected"])
    stats_path = Path(stats_path or paths["stats"])
    judge = judge or generator
    prompts = load_prompts(prompt_version)
    selected = select_pairs(pairs, limit, seed)
    started = time.monotonic()
    with Journal(journal_path) as journal:
        run = _Run(
            generator, judge, journal, prompts, seed=seed, max_parse_retries=max_parse_retries,
            temperature=temperature, judge_temperature=judge_temperature,
            max_tokens={**DEFAULT_MAX_TOKENS, **(max_tokens or {})}, json_mode=json_mode,
            lenient_replies=lenient_replies,
        )  # fmt: skip
        digest = hashlib.sha256("\n".join(run.row_key(p) for _, p in selected).encode()).hexdigest()
        _check_journal(journal, {**run.config, "seed": seed, "limit": limit, "pairs": digest}, resume)
        stats = SynthStats(prompts.version, generator.model, judge.model, pairs=len(selected))
        outcomes: list[dict | None] = [None] * len(selected)
        clients = [generator] if judge is generator else [generator, judge]
        if rows_in_flight is None:
            rows_in_flight = 2 * max(getattr(c, "concurrency", 4) for c in clients)
        todo = iter(enumerate(selected))
        last_checkpoint = time.monotonic()

        progress, task = _make_progress(show_progress, len(selected))

        async def worker() -> None:
            nonlocal last_checkpoint
            for position, (_, pair) in todo:  # one shared iterator: each row goes to one worker
                outcomes[position] = await run.row(pair)
                if progress is not None:
                    progress.update(task, advance=1, **_progress_line(run, outcomes, clients))
                if time.monotonic() - last_checkpoint >= checkpoint_every_s:
                    last_checkpoint = time.monotonic()
                    _fill_stats(stats, outcomes, run)
                    stats.seconds = round(time.monotonic() - started, 3)
                    _write_outputs(outcomes, out_path, rejected_path, stats_path, stats)

        if progress is not None:
            progress.start()
        try:
            await asyncio.gather(*(worker() for _ in range(max(1, rows_in_flight))))
        finally:
            if progress is not None:
                progress.stop()
        _fill_stats(stats, outcomes, run)
        stats.seconds = round(time.monotonic() - started, 3)
        _write_outputs(outcomes, out_path, rejected_path, stats_path, stats)
    return stats


def _make_progress(show: bool, total: int):
    if not show:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "kept {task.fields[kept]} · rejected {task.fields[rejected]} · in flight {task.fields[in_flight]}"
            " · tokens {task.fields[tokens]}"
        ),
        TimeElapsedColumn(),
    )
    task = progress.add_task("synth", total=total, kept=0, rejected=0, in_flight=0, tokens=0)
    return progress, task


def synthesize(
    pairs: Sequence[Pair], generator: LLMClient, out_path: str | Path, **options: Any
) -> SynthStats:
    """Turn (query, passage) pairs into validated InF-IR rows (SPEC §2); blocks (see `synthesize_async`).

    Args:
        pairs: the source pairs (`infir.synth.pairs.read_pairs` reads BEIR folders and JSONL).
        generator: the LLM that writes instructions, poisoned texts and hard negatives.
        out_path: kept rows, JSONL in the InF-IR schema plus provenance and the judge's `verdicts`.
        judge: the LLM that validates (default: the generator; the paper used a stronger one).
        journal_path, rejected_path, stats_path: default beside `out_path`
            (``<out>.journal.sqlite``, ``<out>.rejected.jsonl``, ``<out>.stats.json``).
        resume: carry on from an existing journal (without it, an existing journal is an error).
        limit, seed: synthesise a seeded sample of `limit` pairs (kept in input order).
        max_parse_retries: re-asks after a malformed reply before the row is rejected.
        prompt_version: packaged version (``"v1"``) or a folder of your own templates.
        temperature, judge_temperature: sampling temperatures (re-asks go warmer).
        max_tokens: reply caps per template name, over `DEFAULT_MAX_TOKENS`.
        json_mode: send ``response_format={"type": "json_object"}`` (OpenAI, vLLM, llama.cpp).
        lenient_replies: accept plain-text replies where JSON was asked (see `stages.parse_reply`);
            for small local models, which rarely keep to the format.
        rows_in_flight: rows worked on at once (default: twice the largest client concurrency).
        checkpoint_every_s: how often the output files are rewritten during the run.
        show_progress: draw a rich progress bar.

    Returns:
        The run's `SynthStats` (also written to `stats_path`). Rows still waiting on batch
        requests count as `pending`; run again after `import_batch` to finish them.
    """
    return asyncio.run(synthesize_async(pairs, generator, out_path, **options))


def open_clients(
    llm: str,
    model: str | None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    judge_model: str | None = None,
    concurrency: int = 8,
    timeout: float | None = None,
) -> tuple[LLMClient, LLMClient]:
    """(generator, judge) clients for a backend name: ``openai``, ``local`` or ``batch``.

    The judge is the generator unless `judge_model` names another model (same backend and URL).
    `timeout` (seconds per HTTP try) applies to ``openai`` only.
    """
    if llm == "batch":
        from infir.synth.batch import BatchClient

        if not model:
            raise ValueError("the batch backend needs --model (the model the batch requests are for)")
        generator: LLMClient = BatchClient(model)
        return generator, BatchClient(judge_model) if judge_model and judge_model != model else generator
    from infir.synth.llm import make_client

    opts = {"timeout": timeout} if timeout is not None and llm == "openai" else {}
    generator = make_client(llm, model, base_url, api_key, concurrency, **opts)
    if judge_model and judge_model != model:
        return generator, make_client(llm, judge_model, base_url, api_key, concurrency, **opts)
    return generator, generator


def synthesize_files(
    pairs_path: str | Path,
    out_path: str | Path,
    *,
    llm: str = "local",
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    judge_model: str | None = None,
    concurrency: int = 8,
    timeout: float | None = None,
    split: str | None = None,
    **options: Any,
) -> SynthStats:
    """Read pairs from a file or BEIR folder, open the backend's clients, run `synthesize`, close them."""
    from infir.synth.pairs import read_pairs

    pairs = read_pairs(pairs_path, split)
    generator, judge = open_clients(
        llm,
        model,
        base_url=base_url,
        api_key=api_key,
        judge_model=judge_model,
        concurrency=concurrency,
        timeout=timeout,
    )

    async def run() -> SynthStats:
        try:
            return await synthesize_async(pairs, generator, out_path, judge=judge, **options)
        finally:
            await generator.aclose()
            if judge is not generator:
                await judge.aclose()

    return asyncio.run(run())
