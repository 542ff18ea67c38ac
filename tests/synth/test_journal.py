"""The SQLite journal: stable keys, durable replies, pending batch requests, finished rows."""

from __future__ import annotations

import sqlite3

from infir.synth.journal import Journal, call_key, row_key
from infir.synth.llm.base import Reply

MESSAGES = [{"role": "user", "content": "hi"}]


def test_call_key_is_stable_and_changes_with_every_part():
    base = dict(stage="instruction", prompt_version="v1", inputs={"q": "a", "p": "b"}, model="m", attempt=0)
    key = call_key(**base)
    assert key == call_key(**{**base, "inputs": {"p": "b", "q": "a"}})  # dict order does not matter
    assert len(key) == 64
    for change in ({"stage": "poison_query"}, {"prompt_version": "v2"}, {"inputs": {"q": "a", "p": "c"}},
                   {"model": "m2"}, {"attempt": 1}):  # fmt: skip
        assert call_key(**{**base, **change}) != key
    assert row_key({"query": "a"}, {"model": "m"}) != row_key({"query": "a"}, {"model": "n"})


def test_replies_survive_reopening_and_wal_is_on(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        assert journal.get_reply("k") is None
        journal.record_reply("k", "instruction", "m", MESSAGES, {"temperature": 0.7},
                             Reply("text", "m-2024", 3, 4, {"id": "x"}))  # fmt: skip
    # a fresh connection (as after a crash) sees the committed call
    with Journal(path) as journal:
        assert journal.get_reply("k") == Reply("text", "m-2024", 3, 4, {"id": "x"})
        assert journal.counts() == {
            "calls_done": 1,
            "calls_pending": 0,
            "prompt_tokens": 3,
            "completion_tokens": 4,
        }
        assert journal.tokens_by_model() == {"m": (3, 4)}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pending_requests_turn_into_replies(tmp_path):
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.record_pending("k1", "instruction", "m", MESSAGES, {"seed": 1})
        journal.record_pending("k1", "instruction", "m", MESSAGES, {"seed": 1})  # a duplicate row asks again
        journal.record_pending("k2", "poison_query", "m", MESSAGES, {})
        assert [p.key for p in journal.pending()] == ["k1", "k2"]
        assert journal.get_reply("k1") is None and journal.status_of("k1") == "pending"
        request = journal.pending_request("k1")
        journal.record_reply(
            "k1", request.stage, request.model, request.messages, request.params, Reply("r", "m")
        )
        assert journal.status_of("k1") == "done" and [p.key for p in journal.pending()] == ["k2"]
        journal.record_pending("k1", "instruction", "m", MESSAGES, {})  # never downgrades a finished call
        assert journal.get_reply("k1").text == "r"


def test_rows_and_settings_round_trip(tmp_path):
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.record_row("r", {"status": "kept", "row": {"b": 1, "a": 2}})
        journal.set_setting("run", {"seed": 3})
    with Journal(tmp_path / "j.sqlite") as journal:
        assert list(journal.get_row("r")["row"]) == ["b", "a"]  # key order kept for identical output
        assert journal.get_setting("run") == {"seed": 3} and journal.get_setting("other") is None
