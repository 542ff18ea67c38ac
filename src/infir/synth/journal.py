"""The synthesis journal: a SQLite file that makes a week-long run restartable at any moment.

Every finished model call is stored under a key that hashes (stage, prompt version, inputs,
model, attempt), committed the moment it finishes (WAL mode), so a run killed with SIGKILL and
started again repeats no finished call. Finished rows are stored too, so a restart goes straight
to the rows it had not finished. Calls of the "batch" backend are stored as *pending* requests
until `import-batch` fills in their replies.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from infir.synth.llm.base import Message, Reply

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    request TEXT NOT NULL,
    reply TEXT,
    reply_model TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_status ON calls (status);
CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def call_key(stage: str, prompt_version: str, inputs: dict, model: str, attempt: int) -> str:
    """sha256 of (stage, prompt version, inputs, model, attempt): the identity of one model call."""
    payload = {"stage": stage, "prompt_version": prompt_version, "inputs": inputs, "model": model,
               "attempt": attempt}  # fmt: skip
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def row_key(pair_fields: dict, config: dict) -> str:
    """sha256 of a source pair and the settings that decide its outcome."""
    return hashlib.sha256(_canonical({"pair": pair_fields, "config": config}).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingRequest:
    """A call the batch backend deferred: what to send, and under which key its reply belongs."""

    key: str
    stage: str
    model: str
    messages: list[Message]
    params: dict


def _pending(key: str, stage: str, model: str, request: str) -> PendingRequest:
    body = json.loads(request)
    return PendingRequest(key, stage, model, body["messages"], body["params"])


class Journal:
    """SQLite store of finished calls, pending batch requests, finished rows and run settings.

    Use as a context manager, or call `close()`. One process at a time.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so every write below is its own durable transaction.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process (only power loss can drop the last commits),
        # at a fraction of FULL's fsync cost per call.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ calls
    def get_reply(self, key: str) -> Reply | None:
        """The stored reply of a finished call, or None (also for a pending one)."""
        found = self._db.execute(
            "SELECT reply, reply_model, prompt_tokens, completion_tokens, meta FROM calls "
            "WHERE key = ? AND status = 'done'",
            (key,),
        ).fetchone()
        if found is None:
            return None
        text, model, prompt_tokens, completion_tokens, meta = found
        return Reply(text, model, prompt_tokens, completion_tokens, json.loads(meta))

    def record_reply(
        self, key: str, stage: str, model: str, messages: list[Message], params: dict, reply: Reply
    ) -> None:
        """Store a finished call (replacing a pending entry of the same key)."""
        self._db.execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?)",
            (key, stage, model, _canonical({"messages": messages, "params": params}), reply.text,
             reply.model, reply.prompt_tokens, reply.completion_tokens, _canonical(reply.meta or {}),
             time.time()),
        )  # fmt: skip

    def record_pending(self, key: str, stage: str, model: str, messages: list[Message], params: dict) -> None:
        """Store a deferred call for `export-batch`; a finished call of the same key is kept as is."""
        self._db.execute(
            "INSERT OR IGNORE INTO calls (key, stage, model, status, request, updated) "
            "VALUES (?, ?, ?, 'pending', ?, ?)",
            (key, stage, model, _canonical({"messages": messages, "params": params}), time.time()),
        )

    def pending(self) -> list[PendingRequest]:
        """Every pending request, oldest first."""
        rows = self._db.execute(
            "SELECT key, stage, model, request FROM calls WHERE status = 'pending' ORDER BY updated, key"
        ).fetchall()
        return [_pending(*row) for row in rows]

    def pending_request(self, key: str) -> PendingRequest:
        """The pending request stored under `key` (KeyError when there is none)."""
        found = self._db.execute(
            "SELECT key, stage, model, request FROM calls WHERE key = ? AND status = 'pending'", (key,)
        ).fetchone()
        if found is None:
            raise KeyError(key)
        return _pending(*found)

    def status_of(self, key: str) -> str | None:
        found = self._db.execute("SELECT status FROM calls WHERE key = ?", (key,)).fetchone()
        return found[0] if found else None

    def note_failure(self, key: str, error: str) -> None:
        """Keep the last failure of a pending request (e.g. a batch error line) in its meta."""
        self._db.execute(
            "UPDATE calls SET meta = ?, updated = ? WHERE key = ? AND status = 'pending'",
            (_canonical({"last_error": error}), time.time(), key),
        )

    def counts(self) -> dict[str, int]:
        """Calls by status, and the tokens of all finished calls."""
        done, pending, prompt_tokens, completion_tokens = self._db.execute(
            "SELECT COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'pending'), 0), "
            "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM calls"
        ).fetchone()
        return {"calls_done": done, "calls_pending": pending, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens}  # fmt: skip

    def tokens_by_model(self) -> dict[str, tuple[int, int]]:
        """(prompt, completion) tokens of all finished calls, per model the calls were addressed to."""
        rows = self._db.execute(
            "SELECT model, SUM(prompt_tokens), SUM(completion_tokens) FROM calls WHERE status = 'done' "
            "GROUP BY model"
        ).fetchall()
        return {model: (prompt, completion) for model, prompt, completion in rows}

    # ------------------------------------------------------------------ rows
    def get_row(self, key: str) -> dict | None:
        found = self._db.execute("SELECT outcome FROM rows WHERE key = ?", (key,)).fetchone()
        return json.loads(found[0]) if found else None

    def record_row(self, key: str, outcome: dict) -> None:
        # Not canonical: key order is kept, so a resumed run writes byte-identical rows.
        self._db.execute(
            "INSERT OR REPLACE INTO rows VALUES (?, ?)", (key, json.dumps(outcome, ensure_ascii=False))
        )

    # ------------------------------------------------------------------ settings
    def get_setting(self, name: str) -> object | None:
        found = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(found[0]) if found else None

    def set_setting(self, name: str, value: object) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (name, _canonical(value)))
