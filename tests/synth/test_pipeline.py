"""The synthesis pipeline: in-process against the scripted responder, then against the real HTTP server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from infir.data.io import read_jsonl_models
from infir.data.records import INF_FIELDS, InfRecord
from infir.synth import read_pairs, synthesize
from infir.synth.llm import RetryPolicy, make_client
from infir.synth.llm.base import LLMError, Reply
from infir.synth.pipeline import JournalConflict, select_pairs, synthesize_async
from infir.synth.prompts import load_prompts
from infir.synth.stages import CHECKS, STAGES, InstructionReply, MalformedReply, SatisfiesReply, parse_reply
from tests.synth.responder import ResponderClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAIRS_JSONL = FIXTURES / "synth_pairs.jsonl"
# q6's passage never names Seattle: a correct judge rejects (Q+, I+) for it.
REJECTED_QUERY_ID = "q6"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(tmp_path: Path, name: str, client, **options):
    out = tmp_path / name / "rows.jsonl"
    stats = synthesize(read_pairs(PAIRS_JSONL), client, out, **options)
    return out, stats


# --------------------------------------------------------------------------- parsing and prompts
def test_parse_reply_strips_fences_and_chatter():
    assert (
        parse_reply('```json\n{"instruction": " Find X. "}\n```', InstructionReply).instruction == "Find X."
    )
    assert parse_reply('Sure! {"satisfies": "yes", "reason": "r"} Hope it helps.', SatisfiesReply).satisfies


@pytest.mark.parametrize(
    "text, message",
    [("no json here", "no JSON object"), ('{"instruction": ', "no JSON object"),
     ('{"instruction": 1,}', "invalid"), ('{"instruction": "  "}', "non-empty"),
     ('{"query": "x"}', "instruction")],
)  # fmt: skip
def test_parse_reply_rejects_malformed(text, message):
    with pytest.raises(MalformedReply, match=message):
        parse_reply(text, InstructionReply)


def test_lenient_parsing_takes_plain_text_and_yes_no_only_when_asked():
    with pytest.raises(MalformedReply):
        parse_reply("Instruction: Find reviews.", InstructionReply)
    assert (
        parse_reply('Instruction: "Find reviews."', InstructionReply, lenient=True).instruction
        == "Find reviews."
    )
    assert parse_reply("Yes, it does, because...", SatisfiesReply, lenient=True).satisfies is True
    assert parse_reply("The passage does not. False.", SatisfiesReply, lenient=True).satisfies is False
    with pytest.raises(MalformedReply):
        parse_reply("I am not sure.", SatisfiesReply, lenient=True)
    # valid JSON still wins
    assert parse_reply('{"satisfies": false} yes', SatisfiesReply, lenient=True).satisfies is False


def test_prompts_render_every_variable_and_nothing_else():
    prompts = load_prompts()
    assert prompts.version == "inf-ir-v1"
    messages = prompts["instruction"].render(query="Q?", passage="P.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Query: Q?" in messages[1]["content"] and "{{" not in messages[1]["content"]
    assert '{"instruction": "..."}' in messages[1]["content"]
    with pytest.raises(KeyError, match="missing"):
        prompts["instruction"].render(query="Q?")


# --------------------------------------------------------------------------- in-process runs
def test_good_replies_give_valid_rows_in_input_order(tmp_path):
    out, stats = _run(tmp_path, "run", ResponderClient())
    pairs = read_pairs(PAIRS_JSONL)
    rows, skipped = read_jsonl_models(out, InfRecord)
    assert skipped.count == 0
    assert [r.extra["source_query_id"] for r in rows] == [p.query_id for p in pairs if p.query_id != "q6"]
    assert (stats.kept, stats.rejected, stats.pending) == (7, 1, 0)
    for row in rows:
        extra = row.extra
        assert extra["prompt_version"] == "inf-ir-v1" and extra["generator_model"] == "fake-model"
        assert set(extra["verdicts"]) == {c.name for c in CHECKS}
        assert all(v["passed"] for v in extra["verdicts"].values())
        assert (
            row.instruction_negative != row.instruction_positive and row.query_negative != row.query_positive
        )
    (rejected,) = _lines(out.with_name("rows.rejected.jsonl"))
    assert rejected["source_query_id"] == REJECTED_QUERY_ID
    assert (rejected["stage"], rejected["reason"]) == ("validate", "validation_failed")
    assert (
        "pos_for_qpos_ipos" in rejected["detail"] and not rejected["verdicts"]["pos_for_qpos_ipos"]["passed"]
    )
    saved = json.loads(out.with_name("rows.stats.json").read_text())
    assert saved["failed_checks"] == {"pos_for_qpos_ipos": 1}
    assert saved["stage_yield"]["validate"] == {"reached": 8, "passed": 7}
    assert saved["rejection_reasons"] == {"validate:validation_failed": 1}
    # 6 generation calls and one judge call per check, per row
    assert stats.requests == 8 * (5 + len(CHECKS))


def test_poisoned_query_never_sees_the_poisoned_instruction(tmp_path):
    client = ResponderClient()
    _run(tmp_path, "run", client)
    poison_query_prompts = [c["messages"][1]["content"] for c in client.calls
                            if "edit search queries" in c["messages"][0]["content"]]  # fmt: skip
    assert len(poison_query_prompts) == 8
    assert not any("zz'" in prompt for prompt in poison_query_prompts)  # the responder's I- marker


def test_malformed_replies_are_reasked_and_rows_come_out_the_same(tmp_path):
    clean_out, _ = _run(tmp_path, "clean", ResponderClient())
    noisy_out, stats = _run(tmp_path, "noisy", ResponderClient(faults={"malformed_every": 2}))
    assert stats.malformed_replies > 5
    assert stats.requests == 8 * (5 + len(CHECKS)) + stats.malformed_replies
    assert _lines(noisy_out) == _lines(clean_out)


def test_a_reply_that_stays_malformed_rejects_the_row_with_the_reason(tmp_path):
    client = ResponderClient(faults={"always_malformed": "poison_query"})
    out, stats = _run(tmp_path, "run", client, max_parse_retries=2)
    assert (stats.kept, stats.rejected) == (0, 8)
    assert _lines(out) == []
    for row in _lines(out.with_name("rows.rejected.jsonl")):
        assert (row["stage"], row["reason"]) == ("poison_query", "malformed_reply")
        assert row["detail"].count("attempt") == 3
        assert "hard_negative_document_1" not in row  # stopped there: no later stage ran
    asks = [c for c in client.calls if "edit search queries" in c["messages"][0]["content"]]
    assert len(asks) == 8 * 3
    # re-asks show the bad reply and go warmer
    assert {len(c["messages"]) for c in asks} == {2, 4} and {c["temperature"] for c in asks} == {
        0.7,
        0.9,
        1.0,
    }
    assert stats.stage_yield["poison_query"] == {"reached": 8, "passed": 0}
    assert stats.stage_yield["hard_negative_1"]["reached"] == 0


def test_rerun_reads_the_journal_and_writes_identical_files(tmp_path):
    out, first = _run(tmp_path, "run", ResponderClient())
    before = {p.name: p.read_text() for p in out.parent.glob("rows*.jsonl")}
    client = ResponderClient()
    _, second = _run(tmp_path, "run", client, resume=True)
    assert client.calls == [] and second.requests == 0
    assert {p.name: p.read_text() for p in out.parent.glob("rows*.jsonl")} == before
    assert second.journal["calls_done"] == first.requests


def test_existing_journal_needs_resume_and_names_what_changed(tmp_path):
    _run(tmp_path, "run", ResponderClient())
    with pytest.raises(JournalConflict, match="same job.*--resume"):
        _run(tmp_path, "run", ResponderClient())
    with pytest.raises(JournalConflict, match="differs in: limit, pairs"):
        _run(tmp_path, "run", ResponderClient(), limit=3)


def test_limit_and_seed_sample_deterministically_in_input_order(tmp_path):
    pairs = read_pairs(PAIRS_JSONL)
    sample = select_pairs(pairs, 3, seed=7)
    assert sample == select_pairs(pairs, 3, seed=7)
    assert [i for i, _ in sample] == sorted(i for i, _ in sample)
    assert sample != select_pairs(pairs, 3, seed=8)
    assert len(select_pairs(pairs, None, 0)) == len(select_pairs(pairs, 100, 0)) == 8
    out, stats = _run(tmp_path, "run", ResponderClient(), limit=3, seed=7)
    assert stats.pairs == 3
    assert [
        r["source_query_id"] for r in _lines(out) + _lines(out.with_name("rows.rejected.jsonl"))
    ] == sorted((p.query_id for _, p in sample), key=lambda q: int(q[1:]))


class FlakyClient(ResponderClient):
    """Fails every hard-negative request for good (as a client does after its own retries)."""

    async def complete(self, messages, **params) -> Reply:
        if "write passages" in messages[0]["content"]:
            raise LLMError("server gone")
        return await super().complete(messages, **params)


def test_failed_requests_reject_for_now_and_are_retried_on_resume(tmp_path):
    _, stats = _run(tmp_path, "run", FlakyClient())
    assert stats.kept == 0 and stats.request_failures == 16
    assert stats.rejection_reasons == {"hard_negative_1:request_failed": 8}
    out, resumed = _run(tmp_path, "run", ResponderClient(), resume=True)
    assert (resumed.kept, resumed.rejected) == (7, 1)
    # only the calls that had failed (and what follows them) were made again
    assert resumed.requests == 8 * (2 + len(CHECKS))
    assert _lines(out) == _lines(_run(tmp_path, "fresh", ResponderClient())[0])


def test_a_separate_judge_answers_validation(tmp_path):
    generator, judge = ResponderClient("gen"), ResponderClient("judge")
    out = tmp_path / "rows.jsonl"
    stats = asyncio.run(synthesize_async(read_pairs(PAIRS_JSONL), generator, out, judge=judge))
    assert stats.kept == 7
    assert all("assessor" in c["messages"][0]["content"] or "check edits" in c["messages"][0]["content"]
               for c in judge.calls)  # fmt: skip
    assert len(judge.calls) == 8 * len(CHECKS) and len(generator.calls) == 8 * 5
    assert {(r["generator_model"], r["judge_model"]) for r in _lines(out)} == {("gen", "judge")}


class CrashingClient(ResponderClient):
    """Dies (as a bug would) on its 60th call."""

    async def complete(self, messages, **params) -> Reply:
        if len(self.calls) >= 60:
            raise RuntimeError("boom")
        return await super().complete(messages, **params)


def test_checkpoints_keep_finished_rows_on_disk_when_a_run_dies(tmp_path):
    out = tmp_path / "rows.jsonl"
    with pytest.raises(RuntimeError, match="boom"):
        synthesize(read_pairs(PAIRS_JSONL), CrashingClient(), out, rows_in_flight=2, checkpoint_every_s=0)
    finished = _lines(out)
    assert 0 < len(finished) < 7
    complete = _lines(_run(tmp_path, "full", ResponderClient())[0])
    assert finished == [row for row in complete if row["synth_id"] in {r["synth_id"] for r in finished}]
    saved = json.loads(out.with_name("rows.stats.json").read_text())
    assert saved["kept"] == len(finished) and saved["pending"] > 0


def test_progress_bar_runs(tmp_path):
    _, stats = _run(tmp_path, "run", ResponderClient(), show_progress=True)
    assert stats.kept == 7


def test_beir_folder_gives_one_pair_per_positive_qrel():
    pairs = read_pairs(FIXTURES / "synth_pairs_beir")
    assert [(p.query_id, p.passage_id) for p in pairs] == [
        ("q1", "d1"),
        ("q2", "d2"),
        ("q3", "d3"),
        ("q4", "d4"),
    ]


# --------------------------------------------------------------------------- the real HTTP server
RESPONDER = "tests.synth.responder:respond"


def _http_client(server, **options):
    retry = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
    return make_client("openai", "served-model", server.base_url, None, 8, retry=retry, seed=0, **options)


def test_http_server_good_replies_end_in_valid_rows(tmp_path, chat_server):
    server = chat_server(responder=RESPONDER)
    out = tmp_path / "rows.jsonl"
    client = _http_client(server, price_in_per_1m=1.0, price_out_per_1m=2.0)
    stats = synthesize(read_pairs(PAIRS_JSONL), client, out)
    rows, _ = read_jsonl_models(out, InfRecord)
    assert (len(rows), stats.kept, stats.rejected) == (7, 7, 1)
    assert stats.clients["generator"]["requests"] == stats.requests == server.stats()["requests"]
    assert stats.clients["generator"]["total_tokens"] == stats.prompt_tokens + stats.completion_tokens > 0
    expected_cost = (stats.prompt_tokens * 1.0 + stats.completion_tokens * 2.0) / 1e6
    assert stats.estimated_cost_usd == pytest.approx(expected_cost, abs=1e-6) and expected_cost > 0
    assert {r.extra["generator_model"] for r in rows} == {"served-model"}


def test_http_faults_are_retried_counted_and_change_no_row(tmp_path, chat_server, monkeypatch):
    clean = chat_server(responder=RESPONDER)
    clean_out = tmp_path / "clean.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), _http_client(clean), clean_out)
    faults = {"malformed_every": 4, "status_429_every": 5, "status_500_every": 6, "timeout_every": 9,
              "timeout_delay": 3.0}  # fmt: skip
    monkeypatch.setenv("INFIR_RESPONDER_FAULTS", json.dumps(faults))
    faulty = chat_server(responder=RESPONDER)
    out = tmp_path / "faulty.jsonl"
    started = time.monotonic()
    stats = synthesize(read_pairs(PAIRS_JSONL), _http_client(faulty, timeout=0.5), out)
    assert time.monotonic() - started < 60
    errors = stats.clients["generator"]["errors"]
    assert (
        errors.get("status_429", 0) > 0 and errors.get("status_500", 0) > 0 and errors.get("timeout", 0) > 0
    )
    assert stats.clients["generator"]["retries"] == sum(errors.values())
    assert stats.malformed_replies > 0 and stats.request_failures == 0
    by_status = faulty.stats()["by_status"]
    assert by_status.get("429", 0) == errors["status_429"] and by_status.get("500", 0) == errors["status_500"]
    assert _lines(out) == _lines(clean_out)
    assert _lines(out.with_name("faulty.rejected.jsonl")) == _lines(
        clean_out.with_name("clean.rejected.jsonl")
    )


def test_many_rows_are_in_flight_at_once(tmp_path, chat_server):
    server = chat_server(responder=RESPONDER, latency=0.05)
    synthesize(read_pairs(PAIRS_JSONL), _http_client(server), tmp_path / "rows.jsonl")
    # 8 rows, 8 concurrent requests allowed: the server must have seen several at once
    assert server.stats()["max_in_flight"] >= 4


@pytest.mark.slow
def test_embedded_smollm2_runs_one_pair_end_to_end(tmp_path):
    """The offline default backend on one real pair. Its output is weak: we only ask for a finished row."""
    client = make_client("local")
    # Short caps: on 2 CPU cores every generated token counts; a judge's yes/no needs few.
    caps = {"instruction": 48, "poison_instruction": 48, "poison_query": 24, "hard_negative": 96,
            "judge_satisfies": 24, "judge_plausible": 24}  # fmt: skip
    pair = read_pairs(PAIRS_JSONL)[:1]
    out = tmp_path / "rows.jsonl"
    started = time.monotonic()
    # A 135M model rarely writes the JSON asked for: lenient parsing lets its plain text through,
    # so the row gets as far as the model's answers allow instead of stopping at stage 1.
    stats = synthesize(pair, client, out, max_tokens=caps, max_parse_retries=0, lenient_replies=True)
    seconds = time.monotonic() - started
    kept, rejected = _lines(out), _lines(out.with_name("rows.rejected.jsonl"))
    assert stats.pending == 0 and len(kept) + len(rejected) == 1
    if rejected:
        assert rejected[0]["stage"] in STAGES and rejected[0]["reason"] and rejected[0]["detail"]
    else:
        assert set(INF_FIELDS) <= set(kept[0])
    print(f"\nSmolLM2 one pair: {seconds:.1f}s, {stats.requests} requests, kept={len(kept)}, "
          f"rejections={stats.rejection_reasons}")  # fmt: skip
