"""Offline batch backend: run the pipeline through OpenAI Batch API files instead of live calls.

The cycle, repeated until nothing is pending (each round advances every row by a stage or so):

1. run the pipeline with the batch backend: every call not in the journal is recorded as
   *pending* and its row waits;
2. `export_batch` writes the pending requests as Batch API request JSONL
   (``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``);
3. submit it (``openai batches create ...``) and download the output file;
4. `import_batch` stores its replies in the journal; go to 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from infir.data.errors import InputError
from infir.data.io import atomic_path, iter_jsonl
from infir.synth.journal import Journal
from infir.synth.llm.base import Message, Reply

BATCH_URL = "/v1/chat/completions"
# The Batch API takes at most 50,000 requests per input file.
MAX_REQUESTS_PER_FILE = 50_000


class RequestDeferred(Exception):
    """Raised by `BatchClient.complete`: the request waits for a batch instead of being sent."""


class BatchClient:
    """The "batch" backend: names the model, sends nothing (see the module docstring).

    Args:
        model: the model the batch requests are addressed to (goes into each request body).
    """

    def __init__(self, model: str):
        self.model = model

    async def complete(self, messages: list[Message], **params) -> Reply:
        raise RequestDeferred(self.model)

    async def aclose(self) -> None:
        return None


def export_batch(
    journal_path: str | Path, out_path: str | Path, max_requests_per_file: int = MAX_REQUESTS_PER_FILE
) -> list[Path]:
    """Write every pending request of a journal as OpenAI Batch API request JSONL.

    Args:
        journal_path: the run's journal (``<out>.journal.sqlite`` by default).
        out_path: the request file; when there are more requests than `max_requests_per_file`,
            parts ``<stem>.part001<suffix>``, ... are written instead.

    Returns:
        The files written (none when nothing is pending).
    """
    out_path = Path(out_path)
    with Journal(journal_path) as journal:
        pending = journal.pending()
    chunks = [pending[i : i + max_requests_per_file] for i in range(0, len(pending), max_requests_per_file)]
    written = []
    for number, chunk in enumerate(chunks, start=1):
        path = out_path if len(chunks) == 1 else out_path.with_name(
            f"{out_path.stem}.part{number:03d}{out_path.suffix}"
        )  # fmt: skip
        with atomic_path(path) as handle:
            for request in chunk:
                body = {"model": request.model, "messages": request.messages, **request.params}
                line = {"custom_id": request.key, "method": "POST", "url": BATCH_URL, "body": body}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        written.append(path)
    return written


@dataclass
class ImportReport:
    """What `import_batch` did with each line of a responses file."""

    imported: int = 0
    already_done: int = 0
    failed: int = 0
    unknown: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"imported": self.imported, "already_done": self.already_done, "failed": self.failed,
                "unknown": self.unknown, "errors": self.errors[:20]}  # fmt: skip


def _reply_from_line(path: Path, line: int, obj: dict) -> Reply | str:
    """A Reply for a successful response line, or the error text of a failed one."""
    if obj.get("error"):
        return json.dumps(obj["error"])
    response = obj.get("response")
    if not isinstance(response, dict):
        raise InputError(path, line, "response", "missing (and no error given)")
    if response.get("status_code") != 200:
        return f"status {response.get('status_code')}: {json.dumps(response.get('body'))[:300]}"
    body = response.get("body")
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise InputError(
            path, line, "response.body.choices", "missing a first choice with a message"
        ) from None
    usage = body.get("usage") or {}
    return Reply(
        text=message.get("content") or "",
        model=body.get("model", ""),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        meta={
            "request_id": response.get("request_id"),
            "batch_line_id": obj.get("id"),
            "finish_reason": body["choices"][0].get("finish_reason"),
        },  # fmt: skip
    )


def import_batch(journal_path: str | Path, responses_path: str | Path) -> ImportReport:
    """Store the replies of a Batch API output JSONL in the journal.

    A failed line (``error`` set, or a status other than 200) leaves its request pending, with the
    error noted, so the next `export_batch` asks again. A ``custom_id`` the journal does not know
    is counted, not stored (it belongs to another journal). Bad lines raise `InputError`.
    """
    path = Path(responses_path)
    report = ImportReport()
    with Journal(journal_path) as journal:
        for line, obj in iter_jsonl(path):
            custom_id = obj.get("custom_id")
            if not isinstance(custom_id, str):
                raise InputError(path, line, "custom_id", "missing")
            status = journal.status_of(custom_id)
            if status is None:
                report.unknown += 1
                continue
            if status == "done":
                report.already_done += 1
                continue
            outcome = _reply_from_line(path, line, obj)
            if isinstance(outcome, str):
                journal.note_failure(custom_id, outcome)
                report.failed += 1
                report.errors.append(f"{custom_id}: {outcome}")
                continue
            request = journal.pending_request(custom_id)
            journal.record_reply(custom_id, request.stage, request.model, request.messages, request.params,
                                 outcome)  # fmt: skip
            report.imported += 1
    return report
