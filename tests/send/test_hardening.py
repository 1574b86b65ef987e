"""Issue #11: one reader, one disk, one key must never stop or silently shrink a send.

Each test runs the commands the editor runs and looks at what they see: the output, the
exit status, what the outbox, the SMTP server or the SendGrid server received."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.model import NAME_MAX, SUBJECT_LIMIT
from tests.conftest import SENDGRID_KEY, SmtpRecorder, free_port, use_smtp
from tests.sendgrid_fake import FakeSendGrid

ISSUE = "daily/2025-05-14"
LONG_NAME = " ".join(f"Name{i:04d}" for i in range(150))  # 1,349 characters


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["-w", str(root), *args], catch_exceptions=False)


def subscribe(root: Path, count: int, newsletter: str = "daily") -> list[str]:
    addresses = [f"r{i:03d}@example.com" for i in range(count)]
    path = root / "readers.csv"
    path.write_text("email,name,tier\n" + "".join(f"{a},Reader {a[1:4]},free\n" for a in addresses))
    result = run(root, "subscribers", "import", str(path), "--newsletter", newsletter)
    assert result.exit_code == 0, result.output
    return addresses


def outbox_files(root: Path) -> list[Path]:
    return sorted((root / "outbox" / ISSUE).glob("*.eml"))


def outbox(root: Path) -> dict[str, email.message.EmailMessage]:
    found = {}
    for path in outbox_files(root):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"].addresses[0].addr_spec)] = message
    return found


def set_subject(root: Path, subject: str) -> None:
    path = root / "issues" / f"{ISSUE}.md"
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("subject:"))
    lines[at] = f"subject: {subject}\n"
    path.write_text("".join(lines))


# -- rule 1: a poison recipient --------------------------------------------------------------


def _rename(db_url: str, names: dict[str, str]) -> None:
    """Names written before there was a limit (SQLite holds any length; PostgreSQL 300)."""
    from newsletter.store import open_store
    from newsletter.store.schema import subscribers

    store = open_store(db_url)
    with store.begin() as conn:
        for address, name in names.items():
            conn.execute(
                update(subscribers).where(subscribers.c.email == address).values(name=name)
            )
    store.close()


def test_very_long_names_are_cut_and_folded_and_the_send_reaches_everyone(
    sending: Path, db_url: str
) -> None:
    readers = subscribe(sending, 4)
    ascii_name = LONG_NAME if db_url.startswith("sqlite") else LONG_NAME[:300]
    accented = ("Zoë Ångström-Łukasiewicz " * 20)[:300]
    _rename(db_url, {readers[1]: ascii_name, readers[2]: accented})
    result = run(sending, "send", ISSUE, "--late")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{ISSUE} via outbox: 4 sent, 0 failed, 0 skipped")
    messages = outbox(sending)
    assert sorted(messages) == readers
    assert messages[readers[1]]["To"].addresses[0].display_name == LONG_NAME[:NAME_MAX].rstrip()
    for path in outbox_files(sending):
        raw = path.read_bytes()
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        to = re.search(r"^To: (.*?)\r\n(?=\S)", head, re.S | re.M)
        assert to is not None and all(len(line) <= 78 for line in to.group(1).split("\r\n"))
        if readers[2] in head:  # RFC 2047 words: decoded as the RFC says, no space between
            decoded = str(make_header(decode_header(to.group(1).replace("\r\n", ""))))
            assert decoded == f"{accented[:NAME_MAX].rstrip()} <{readers[2]}>"


def test_adding_a_name_over_the_limit_is_refused(sending: Path) -> None:
    added = run(
        sending,
        "subscribers",
        "add",
        "long@example.com",
        "--newsletter",
        "daily",
        "--name",
        LONG_NAME,
    )
    assert added.exit_code == 1
    assert added.stderr == f"Error: the name is {len(LONG_NAME)} characters: over {NAME_MAX}\n"


# SQLite only: PostgreSQL's email column (320 characters) cannot hold such an address
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_recipient_whose_message_cannot_be_built_fails_alone_and_the_send_goes_on(
    sending: Path, db_url: str
) -> None:
    readers = subscribe(sending, 4)
    from newsletter.store import open_store
    from newsletter.store.schema import subscribers

    store = open_store(db_url)  # a row left by an older version: an address mail cannot carry
    bad = "x" * 1100 + "@example.com"
    with store.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email == readers[1]).values(email=bad))
    store.close()
    first = run(sending, "send", ISSUE, "--late")
    assert first.exit_code == 3, first.output
    assert first.stdout.startswith(f"{ISSUE} via outbox: 3 sent, 1 failed, 0 skipped")
    assert first.stderr.startswith(
        f"failed {bad}: the message cannot be built: the To header is 1115 octets long: over 998\n"
    )
    assert sorted(outbox(sending)) == sorted(r for r in readers if r != readers[1])
    again = run(sending, "send", ISSUE, "--late")  # the poison row never blocks a rerun
    assert again.exit_code == 3
    assert again.stdout.startswith(f"{ISSUE} was sent already: 3 sent, 1 failed")


def _longest_subject_the_writer_takes() -> int:
    """Probe the header writer: the longest ASCII subject a test send can carry."""
    from newsletter.errors import MessageError
    from newsletter.send.message import Text, header

    n = 900
    while True:
        try:
            header("Subject", Text("[TEST] " + "s" * (n + 1)))
        except MessageError:
            return n
        n += 1


def test_a_subject_mail_cannot_carry_is_an_error_in_check_and_send_does_not_crash(
    sending: Path,
) -> None:
    assert _longest_subject_the_writer_takes() == SUBJECT_LIMIT
    subscribe(sending, 2)
    set_subject(sending, "w" * (SUBJECT_LIMIT + 1))
    checked = run(sending, "check", str(sending / "issues" / f"{ISSUE}.md"))
    assert checked.exit_code == 1
    assert (
        f"issues/{ISSUE}.md:5: error: subject is {SUBJECT_LIMIT + 1} characters: over "
        f"{SUBJECT_LIMIT}, the longest a mail header can carry" in checked.stderr
    )
    for extra in ([], ["--dry-run"], ["--test", "editor@example.com"]):
        refused = run(sending, "send", ISSUE, "--late", *extra)
        assert refused.exit_code == 1, (extra, refused.output)
        assert refused.stderr.startswith("Error: the issue does not build (1 error(s)); first: ")
        assert "the longest a mail header can carry" in refused.stderr
    assert outbox_files(sending) == []
    set_subject(sending, "w" * SUBJECT_LIMIT)  # at the limit: a warning, and it goes out
    checked = run(sending, "check", str(sending / "issues" / f"{ISSUE}.md"))
    assert checked.exit_code == 0
    assert f"subject is {SUBJECT_LIMIT} characters: over 78, inboxes cut it off" in checked.stdout
    test = run(sending, "send", ISSUE, "--test", "editor@example.com")
    assert test.exit_code == 0, test.output
    sent = run(sending, "send", ISSUE, "--late")
    assert sent.exit_code == 0, sent.output
    assert [m["Subject"] for m in outbox(sending).values()] == ["w" * SUBJECT_LIMIT] * 2


def test_an_import_refuses_a_name_over_the_limit_with_a_reason(sending: Path) -> None:
    path = sending / "readers.csv"
    path.write_text(f"email,name\na@example.com,Ann\nb@example.com,{LONG_NAME}\n")
    result = run(sending, "subscribers", "import", str(path), "--newsletter", "daily")
    assert result.exit_code == 3
    assert result.stderr == (
        f"readers.csv:3: rejected b@example.com: name is {len(LONG_NAME)} characters: "
        f"over {NAME_MAX} (shorten it)\n"
    )
    assert result.stdout.startswith("1 added, 0 updated, 0 unchanged, 0 skipped, 1 rejected")


# -- rule 2: failed recipients are counted, explained, and retried once ----------------------


def _root_or_skip(what: str) -> None:
    """Mounting a tmpfs needs root: skipped with the reason elsewhere, a failure in CI."""
    if os.geteuid() != 0:
        reason = f"{what} needs root (it mounts a small tmpfs)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def small_disk(sending: Path) -> Iterator[Path]:
    """The workspace's outbox/ on a 1 MiB tmpfs, unmounted after the test."""
    _root_or_skip("the full-disk test")
    folder = sending / "outbox"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the disk under `folder` but for about `leave` bytes."""
    filler = folder / "filler"
    stats = os.statvfs(folder)
    filler.write_bytes(b"\0" * max(stats.f_bavail * stats.f_frsize - leave, 0))
    return filler


def test_a_full_disk_fails_some_a_rerun_says_why_and_retry_failed_sends_them_once(
    sending: Path, small_disk: Path
) -> None:
    readers = subscribe(sending, 12)
    size = len(run(sending, "send", ISSUE, "--dry-run").stdout.encode())  # a message's order
    filler = _fill(small_disk, leave=4 * 4096 + 5 * size)
    first = run(sending, "send", ISSUE, "--late")
    assert first.exit_code == 3, first.output
    failed = sorted(
        line.split()[1][:-1] for line in first.stderr.splitlines() if line.startswith("failed ")
    )
    sent = len(outbox_files(sending))
    assert failed and sent + len(failed) == 12
    folder = small_disk / ISSUE
    reason = f"cannot write to {folder}: No space left on device"
    lines = first.stdout.splitlines()
    assert lines[0].startswith(
        f"{ISSUE} via outbox: {sent} sent, {len(failed)} failed, 0 skipped, 0 already sent, 0 unknown in "
    )
    assert lines[1:] == [
        f"{len(failed)} failed, not sent (--retry-failed to send to them again):",
        f"  {len(failed)} failed: {reason}",
    ]
    again = run(sending, "send", ISSUE, "--late")
    assert again.exit_code == 3
    assert again.stdout == (
        f"{ISSUE} was sent already: {sent} sent, {len(failed)} failed (--retry-failed to send "
        f"to them again); nothing to send\n  {len(failed)} failed: {reason}\n"
    )
    stats = run(sending, "stats", ISSUE)
    assert f"  Failed{len(failed):>24}" in stats.stdout.splitlines()
    assert f"  {len(failed)} failed: {reason}" in stats.stdout.splitlines()

    filler.unlink()  # space again; and one of the failed readers leaves meanwhile
    assert run(sending, "subscribers", "remove", failed[0]).exit_code == 0
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outbox_files(sending)}
    retried = run(sending, "send", ISSUE, "--late", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.startswith(
        f"{ISSUE} via outbox: {len(failed) - 1} sent, 0 failed, 1 skipped, {sent} already sent, "
        "0 unknown in "
    )
    assert sorted(outbox(sending)) == sorted(r for r in readers if r != failed[0])
    assert len(outbox_files(sending)) == 11  # each recipient exactly once
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outbox_files(sending)}
    assert {n: after[n] for n in before} == before  # nobody reached before got it again
    last = run(sending, "send", ISSUE, "--late", "--retry-failed")
    assert (last.exit_code, last.stdout) == (
        0,
        f"{ISSUE} was sent already: 11 sent; nothing to send\n",
    )


def test_an_smtp_server_refusing_for_a_while_fails_some_and_retry_failed_reaches_them_once(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    use_smtp(sending, smtp_server.port)
    readers = subscribe(sending, 5)
    for address in readers[1:3]:
        smtp_server.rcpt_replies[address] = [f"550 5.7.1 <{address}>: not now"]
    first = run(sending, "send", ISSUE, "--late", "--backend", "smtp", "--yes")
    assert first.exit_code == 3
    assert first.stdout.splitlines()[1:] == [
        "2 failed, not sent (--retry-failed to send to them again):",
        "  2 failed: 550 5.7.1 <address>: not now",
    ]
    again = run(sending, "send", ISSUE, "--late", "--backend", "smtp", "--yes", "--json")
    assert again.exit_code == 3
    assert again.stdout.startswith(f"{ISSUE} was sent already: 3 sent, 2 failed (--retry-failed")
    retried = run(
        sending, "send", ISSUE, "--late", "--backend", "smtp", "--yes", "--retry-failed", "--json"
    )
    assert retried.exit_code == 0, retried.output
    report = json.loads(retried.stdout)
    assert (report["sent"], report["failed"], report["already_sent"]) == (2, 0, 3)
    assert (report["failed_total"], report["failure_reasons"]) == (0, [])
    assert sorted(smtp_server.received()) == readers  # each exactly once


# -- rule 3: no secret in any text shown -----------------------------------------------------


def sendgrid_send(root: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run(root, "send", ISSUE, "--late", "--backend", "sendgrid", "--yes", *extra)


def use_sendgrid(root: Path, settings: str = "") -> None:
    config = root / "newsletter.toml"
    config.write_text(
        config.read_text() + f"\n[sendgrid]\nretry_delay = 0.01\ntimeout = 2\n{settings}\n"
    )


def test_a_key_the_provider_echoes_is_masked_in_the_error_the_journal_and_stats(
    sending: Path, fake_sendgrid: FakeSendGrid, db_url: str
) -> None:
    use_sendgrid(sending, "retries = 1")
    subscribe(sending, 3)
    fake_sendgrid.faults = [("echo", 401)]
    refused = sendgrid_send(sending)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: SendGrid refused the request (401): not allowed: Bearer <SENDGRID_API_KEY>\n"
    )
    fake_sendgrid.faults = [("echo", 500)] * 2
    failed = sendgrid_send(sending, "--json")
    assert failed.exit_code == 3
    assert json.loads(failed.stdout)["failure_reasons"] == [
        {
            "error": "SendGrid answered 500 2 times: not allowed: Bearer <SENDGRID_API_KEY>",
            "count": 3,
        }
    ]
    again = sendgrid_send(sending)
    stats = run(sending, "stats", ISSUE, "--json")
    for shown in (refused.output, failed.output, again.output, stats.output):
        assert SENDGRID_KEY not in shown
    assert "<SENDGRID_API_KEY>" in again.stdout
    from newsletter.store import journal, open_store

    store = open_store(db_url)
    with store.begin() as conn:
        errors = [r["error"] for r in journal.rows(conn, ISSUE, ["failed"])]
    store.close()
    assert len(errors) == 3 and not any(SENDGRID_KEY in e for e in errors)


def test_a_secret_an_http_client_quotes_in_an_unexpected_exception_is_masked(
    sending: Path, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    def quoting(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        # what http.client says of a header it will not send: the value, quoted
        raise ValueError(f"Invalid header value {request.get_header('Authorization')!r}")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", quoting)
    use_sendgrid(sending)
    subscribe(sending, 2)
    result = sendgrid_send(sending)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unexpected ValueError: Invalid header value 'Bearer <SENDGRID_API_KEY>' "
        "(a bug: please report it)\n"
    )
    assert SENDGRID_KEY not in result.output


# -- rule 4: no connection to SendGrid is a failure, not an unknown --------------------------


@pytest.mark.parametrize("fault", ["refused", "dns", "tls"])
def test_a_sendgrid_that_cannot_be_reached_fails_fast_and_retry_failed_sends_once(
    sending: Path, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    import socket
    import time

    use_sendgrid(sending, "retries = 2\nbatch_size = 2\nparallel = 1")
    readers = subscribe(sending, 5)
    resolver = socket.getaddrinfo
    if fault == "refused":  # a closed port on loopback
        host, reason = f"http://127.0.0.1:{free_port()}", "[Errno 111] Connection refused"
    elif fault == "dns":
        host, reason = "https://api.sendgrid.invalid", "[Errno -2] Name or service not known"

        def unknown(name, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise socket.gaierror(-2, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", unknown)
    else:  # TLS to a server that speaks plain HTTP: the handshake fails
        host, reason = fake_sendgrid.url.replace("http:", "https:"), "[SSL"
    monkeypatch.setenv("SENDGRID_API_HOST", host)
    started = time.monotonic()
    first = sendgrid_send(sending, "--json")
    assert time.monotonic() - started < 10
    assert first.exit_code == 3, first.output
    report = json.loads(first.stdout)
    assert (report["sent"], report["failed"], report["unknown"]) == (0, 5, 0)
    [(error, count)] = [(r["error"], r["count"]) for r in report["failure_reasons"]]
    assert count == 5
    assert error.startswith(f"cannot reach SendGrid at {host} (nothing sent): {reason}")
    assert fake_sendgrid.attempts == 0
    monkeypatch.setattr(socket, "getaddrinfo", resolver)  # the API reachable again
    monkeypatch.setenv("SENDGRID_API_HOST", fake_sendgrid.url)
    again = sendgrid_send(sending)
    assert again.exit_code == 3
    assert again.stdout.startswith(f"{ISSUE} was sent already: 0 sent, 5 failed (--retry-failed")
    retried = json.loads(sendgrid_send(sending, "--retry-failed", "--json").stdout)
    assert (retried["sent"], retried["failed"], retried["unknown"]) == (5, 0, 0)
    assert sorted(fake_sendgrid.recipients()) == readers  # each exactly once
