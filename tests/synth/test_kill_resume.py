"""A run killed with SIGKILL mid-way and resumed ends with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from infir.synth.stages import CHECKS

PAIRS = Path(__file__).resolve().parents[1] / "fixtures" / "synth_pairs.jsonl"
REPO_ROOT = Path(__file__).resolve().parents[2]
RESPONDER = "tests.synth.responder:respond"
CALLS_PER_ROW = 5 + len(CHECKS)


def _cli(out: Path, base_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from infir.cli import main; main()", "synth", "--pairs", str(PAIRS),
            "--out", str(out), "--llm", "openai", "--base-url", base_url, "--model", "served-model",
            "--concurrency", "3", "--no-progress", *extra]  # fmt: skip


def _calls_done(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(journal, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM calls WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_sigkill_then_resume_gives_the_rows_of_an_uninterrupted_run(tmp_path, chat_server):
    fast = chat_server(responder=RESPONDER)
    reference = tmp_path / "reference" / "rows.jsonl"
    subprocess.run(
        _cli(reference, fast.base_url), cwd=REPO_ROOT, check=True, capture_output=True, timeout=120
    )
    total_calls = json.loads(reference.with_name("rows.stats.json").read_text())["requests"]
    assert total_calls == 8 * CALLS_PER_ROW

    slow = chat_server(responder=RESPONDER, latency=0.25)
    out = tmp_path / "killed" / "rows.jsonl"
    journal = out.with_name("rows.journal.sqlite")
    process = subprocess.Popen(_cli(out, slow.base_url), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while _calls_done(journal) < 30 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    finished_before_kill = _calls_done(journal)
    assert 30 <= finished_before_kill < total_calls

    command = _cli(out, slow.base_url, "--resume")
    resumed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    stats = json.loads(out.with_name("rows.stats.json").read_text())
    # no finished call was repeated: the two runs together made exactly the calls of one run
    assert stats["requests"] == total_calls - finished_before_kill
    assert stats["journal_hits"] >= finished_before_kill
    assert out.read_text() == reference.read_text()
    assert (
        out.with_name("rows.rejected.jsonl").read_text()
        == reference.with_name("rows.rejected.jsonl").read_text()
    )
    assert len(out.read_text().splitlines()) == 7
