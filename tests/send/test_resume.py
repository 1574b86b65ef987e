"""A real `newsletter send` process killed with SIGKILL mid-send, then run again: every
recipient gets the issue exactly once (apart from the few reported unknown, never twice)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SmtpRecorder, subscribe_readers, use_smtp
from tests.sendgrid_fake import FakeSendGrid

COUNT = 300


def _env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(NEWSLETTER_DATABASE_URL=db_url, NEWSLETTER_SECRET="crash-test-secret-" + "y" * 40)
    return env


def _send(root: Path, db_url: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "newsletter",
        "-w",
        str(root),
        "send",
        "daily/2025-05-14",
        "--late",
        "--yes",
        *extra,
    ]
    return subprocess.Popen(argv, env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(process: subprocess.Popen[bytes], condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the send never got going"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()  # reaps it and closes its pipes


def test_smtp_send_killed_mid_way_reaches_everyone_exactly_once(
    sending: Path, db_url: str, smtp_server: SmtpRecorder
) -> None:
    use_smtp(sending, smtp_server.port, connections=2)
    addresses = subscribe_readers(sending, COUNT)
    smtp_server.data_delay = 0.004
    first = _send(sending, db_url, "--backend", "smtp")
    _kill_when(first, lambda: len(smtp_server.messages) >= 60)
    at_kill = len(smtp_server.messages)
    assert at_kill < COUNT

    second = _send(sending, db_url, "--backend", "smtp", "--json")
    out, err = second.communicate(timeout=120)
    assert out, err.decode()
    report = json.loads(out)
    received = collections.Counter(smtp_server.received())
    assert [a for a, n in received.items() if n > 1] == []  # nobody got it twice
    unknown = set(report["unknown_recipients"])
    assert len(unknown) <= 2  # at most the messages in flight on the two connections
    assert {a for a in addresses if received[a] == 0} <= unknown
    assert report["already_sent"] + report["sent"] == COUNT - len(unknown)
    assert second.returncode == (3 if unknown else 0), err.decode()

    third = _send(sending, db_url, "--backend", "smtp")
    out, _ = third.communicate(timeout=60)
    assert out.decode().startswith("daily/2025-05-14 was sent already: ")


def test_outbox_send_killed_mid_way_settles_by_its_files(sending: Path, db_url: str) -> None:
    addresses = subscribe_readers(sending, COUNT)
    folder = sending / "outbox" / "daily" / "2025-05-14"
    first = _send(sending, db_url)
    _kill_when(first, lambda: folder.is_dir() and len(list(folder.glob("*.eml"))) >= 40)
    second = _send(sending, db_url, "--json")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["unknown"] == 0  # the outbox's files say what went out: nothing is unknown
    assert report["already_sent"] + report["sent"] == COUNT
    assert len(list(folder.glob("*.eml"))) == COUNT
    assert not list(folder.glob(".*.tmp"))  # no half-written file left behind
    assert len(addresses) == COUNT


def test_sendgrid_send_killed_mid_way_reaches_everyone_exactly_once(
    sending: Path, db_url: str, fake_sendgrid: FakeSendGrid
) -> None:
    """SendGrid's batches go from pending to in flight in one transaction with their
    messages built inside it: a kill anywhere leaves a batch pending (sent later) or in
    flight (unknown), never sent twice."""
    config = sending / "newsletter.toml"
    config.write_text(config.read_text() + "\n[sendgrid]\nbatch_size = 10\nparallel = 2\n")
    addresses = subscribe_readers(sending, COUNT)
    fake_sendgrid.faults = [("sleep", 0.01)] * 1000  # a request takes a while: kills land mid-way
    first = _send(sending, db_url, "--backend", "sendgrid")
    _kill_when(first, lambda: len(fake_sendgrid.requests) >= 6)
    assert len(fake_sendgrid.recipients()) < COUNT

    second = _send(sending, db_url, "--backend", "sendgrid", "--json")
    out, err = second.communicate(timeout=120)
    assert out, err.decode()
    report = json.loads(out)
    received = collections.Counter(fake_sendgrid.recipients())
    assert [a for a, n in received.items() if n > 1] == []  # nobody got it twice
    unknown = set(report["unknown_recipients"])
    assert len(unknown) <= 2 * 10  # at most the two batches in flight when it was killed
    assert {a for a in addresses if received[a] == 0} <= unknown
    assert report["already_sent"] + report["sent"] == COUNT - len(unknown)


def test_three_senders_share_one_issue_on_postgresql(
    workspace: Path, pg_url: str, smtp_server: SmtpRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several `newsletter send` processes on one issue: each claims its own batches
    (FOR UPDATE SKIP LOCKED); one is killed; together they still reach everyone once."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", pg_url)
    sending, db_url = workspace, pg_url
    use_smtp(sending, smtp_server.port, connections=1)
    addresses = subscribe_readers(sending, COUNT)
    smtp_server.data_delay = 0.004
    senders = [_send(sending, db_url, "--backend", "smtp", "--json") for _ in range(3)]
    _kill_when(senders[1], lambda: len(smtp_server.messages) >= 60)
    reports = []
    for process in (senders[0], senders[2]):
        out, err = process.communicate(timeout=120)
        assert out, err.decode()
        reports.append(json.loads(out))
    assert sum(r["sent"] for r in reports) > 0  # (which survivor does how much depends on timing)
    final = _send(
        sending, db_url, "--backend", "smtp", "--json"
    )  # picks up what the killed one held
    out, err = final.communicate(timeout=120)
    last = json.loads(out)
    received = collections.Counter(smtp_server.received())
    assert [a for a, n in received.items() if n > 1] == []
    unknown = set(last["unknown_recipients"])
    assert len(unknown) <= 1  # the killed sender had one connection, so one message in flight
    assert {a for a in addresses if received[a] == 0} <= unknown
    assert len(received) + len(unknown - set(received)) == COUNT
