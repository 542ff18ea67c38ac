"""Offline batch backend: export pending requests, import Batch API output, carry on; it must round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infir.data.errors import InputError
from infir.synth import BatchClient, export_batch, import_batch, read_pairs, synthesize
from infir.synth.stages import CHECKS
from tests.synth.responder import ResponderClient, respond

PAIRS_JSONL = Path(__file__).resolve().parents[1] / "fixtures" / "synth_pairs.jsonl"


def fabricate_responses(requests_path: Path, responses_path: Path, faults: dict | None = None,
                        fail_ids: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Answer a Batch API request file the way the Batch API would, with the scripted responder."""
    lines = []
    for number, line in enumerate(requests_path.read_text().splitlines()):
        request = json.loads(line)
        assert request["method"] == "POST" and request["url"] == "/v1/chat/completions"
        if request["custom_id"] in fail_ids:
            lines.append({"id": f"batch_req_{number}", "custom_id": request["custom_id"], "response": None,
                          "error": {"code": "server_error", "message": "try again"}})  # fmt: skip
            continue
        content = respond(request["body"], faults or {})
        body = {"id": f"chatcmpl-{number}", "object": "chat.completion", "model": request["body"]["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip
        lines.append({"id": f"batch_req_{number}", "custom_id": request["custom_id"],
                      "response": {"status_code": 200, "request_id": f"req_{number}", "body": body},
                      "error": None})  # fmt: skip
    responses_path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_batch_rounds(tmp_path: Path, faults: dict | None = None, max_rounds: int = 12) -> tuple[Path, int]:
    out = tmp_path / "batch" / "rows.jsonl"
    journal = out.with_name("rows.journal.sqlite")
    pairs = read_pairs(PAIRS_JSONL)
    for round_number in range(max_rounds):
        stats = synthesize(pairs, BatchClient("fake-model"), out, resume=round_number > 0)
        if stats.pending == 0:
            return out, round_number
        assert stats.requests == 0 and stats.deferred > 0
        (requests_file,) = export_batch(journal, tmp_path / f"requests_{round_number}.jsonl")
        responses_file = tmp_path / f"responses_{round_number}.jsonl"
        fabricate_responses(requests_file, responses_file, faults)
        report = import_batch(journal, responses_file)
        assert report.imported == len(requests_file.read_text().splitlines()) and report.failed == 0
    raise AssertionError("batch rounds did not finish")


@pytest.mark.parametrize("faults", [{}, {"malformed_every": 2}])
def test_batch_rounds_give_the_rows_of_an_online_run(tmp_path, faults):
    online_out = tmp_path / "online" / "rows.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), ResponderClient("fake-model", faults=faults), online_out)
    batch_out, rounds = run_batch_rounds(tmp_path, faults)
    # instruction; I- and Q-; HN1 and HN2; the judge checks (re-asks add rounds)
    assert rounds == 4 if not faults else rounds > 4
    assert _lines(batch_out) == _lines(online_out) and len(_lines(batch_out)) == 7
    assert _lines(batch_out.with_name("rows.rejected.jsonl")) == _lines(
        online_out.with_name("rows.rejected.jsonl")
    )


def test_export_writes_batch_api_requests_and_splits_large_ones(tmp_path):
    out = tmp_path / "rows.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), BatchClient("gpt-4o-mini"), out)
    journal = tmp_path / "rows.journal.sqlite"
    (single,) = export_batch(journal, tmp_path / "req.jsonl")
    requests = _lines(single)
    assert len(requests) == 8 and len({r["custom_id"] for r in requests}) == 8
    body = requests[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["messages"][0]["role"] == "system"
    assert {"temperature", "max_tokens", "seed"} <= set(body)
    parts = export_batch(journal, tmp_path / "req.jsonl", max_requests_per_file=3)
    assert [p.name for p in parts] == ["req.part001.jsonl", "req.part002.jsonl", "req.part003.jsonl"]
    assert sum(len(_lines(p)) for p in parts) == 8


def test_failed_and_unknown_lines_leave_requests_pending(tmp_path):
    out = tmp_path / "rows.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), BatchClient("fake-model"), out)
    journal = tmp_path / "rows.journal.sqlite"
    (requests_file,) = export_batch(journal, tmp_path / "req.jsonl")
    failing = _lines(requests_file)[0]["custom_id"]
    responses = tmp_path / "resp.jsonl"
    fabricate_responses(requests_file, responses, fail_ids=frozenset({failing}))
    with responses.open("a") as handle:
        handle.write(json.dumps({"custom_id": "not-ours", "response": None, "error": None}) + "\n")
    report = import_batch(journal, responses)
    assert (report.imported, report.failed, report.unknown) == (7, 1, 1)
    assert import_batch(journal, responses).already_done == 7
    (again,) = export_batch(journal, tmp_path / "req2.jsonl")
    assert [r["custom_id"] for r in _lines(again)] == [failing]
    stats = synthesize(read_pairs(PAIRS_JSONL), BatchClient("fake-model"), out, resume=True)
    # 7 rows moved on to I- and Q-; the failed one still waits for its instruction
    assert stats.pending == 8 and stats.deferred == 7 * 2 + 1 == stats.journal["calls_pending"]


def test_bad_responses_file_names_the_line(tmp_path):
    out = tmp_path / "rows.jsonl"
    synthesize(read_pairs(PAIRS_JSONL), BatchClient("fake-model"), out)
    (requests_file,) = export_batch(tmp_path / "rows.journal.sqlite", tmp_path / "req.jsonl")
    custom_id = _lines(requests_file)[0]["custom_id"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"custom_id": custom_id, "response": {"status_code": 200, "body": {}}}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl, line 1, field 'response.body.choices'"):
        import_batch(tmp_path / "rows.journal.sqlite", bad)


def test_checks_cover_the_papers_validation():
    names = {c.name for c in CHECKS}
    assert {"pos_for_qpos_ipos", "pos_for_qpos_ineg", "pos_for_qneg_ipos", "hn1_for_qpos_ineg",
            "hn2_for_qneg_ipos"} <= names  # fmt: skip
