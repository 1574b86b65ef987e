"""`newsletter send --due` as cron runs it: real processes. Two started at the same instant
on one database (SQLite and PostgreSQL) reach every recipient exactly once; a run killed
mid-send is resumed by the next `--due`. The clock is NEWSLETTER_NOW (test-only), moved by
the test, never slept."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import SmtpRecorder, subscribe_readers, use_smtp
from tests.send.test_schedule import schedule_workspace

COUNT = 200
AT = "2025-05-14T06:30:05+08:00"


def _due(root: Path, now: str, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NEWSLETTER_NOW=now)  # the database URL and secret: `sending`
    argv = [sys.executable, "-m", "newsletter", "-w", str(root), "send", "--due", "--json"]
    return subprocess.Popen(
        [*argv, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _report(process: subprocess.Popen[bytes]) -> dict[str, dict[str, object]]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err.decode()
    return {entry["issue"]: entry for entry in json.loads(out)["issues"]}


def test_two_due_runs_at_once_reach_everyone_exactly_once(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    schedule_workspace(sending)
    use_smtp(sending, smtp_server.port, connections=2)
    addresses = subscribe_readers(sending, COUNT)
    smtp_server.data_delay = 0.002
    runs = [_due(sending, AT, "--backend", "smtp", "--yes") for _ in range(2)]
    reports = [_report(p) for p in runs]

    received = collections.Counter(smtp_server.received())
    assert [a for a, n in received.items() if n > 1] == []  # nobody got it twice
    assert sorted(received) == sorted(addresses)  # and everybody got it
    issue = "daily/2025-05-14"
    sent = [r[issue].get("sent", 0) for r in reports if issue in r]
    assert sum(sent) == COUNT  # (how the two shared it depends on timing)
    for report in reports:  # the day before is missed by both, sent by neither
        assert report["daily/2025-05-13"]["action"] == "missed"

    again = _report(_due(sending, "2025-05-14T06:31:00+08:00", "--backend", "smtp", "--yes"))
    assert issue not in again  # sent: the next minute's run leaves it alone
    assert len(smtp_server.received()) == COUNT


def test_an_interrupted_due_send_is_resumed_by_the_next_run(sending: Path) -> None:
    schedule_workspace(sending)
    subscribe_readers(sending, COUNT)
    folder = sending / "outbox" / "daily" / "2025-05-14"
    first = _due(sending, AT)
    deadline = time.monotonic() + 120
    while not (folder.is_dir() and len(list(folder.glob("*.eml"))) >= 30):
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        assert time.monotonic() < deadline, "the send never got going"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert len(list(folder.glob("*.eml"))) < COUNT

    schedule = CliRunner().invoke(
        cli, ["-w", str(sending), "schedule", "--days", "0"], env={"NEWSLETTER_NOW": AT}
    )
    assert "daily        2025-05-14  Wed 06:30 HKT  22:30 UTC  sending" in schedule.output

    second = _report(_due(sending, "2025-05-14T06:31:00+08:00"))["daily/2025-05-14"]
    assert second["action"] == "sent"
    assert second["unknown"] == 0  # the outbox's files say what went out
    assert second["already_sent"] + second["sent"] == COUNT
    assert len(list(folder.glob("*.eml"))) == COUNT
