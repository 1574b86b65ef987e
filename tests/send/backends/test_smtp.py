"""The SMTP backend against a real SMTP server (aiosmtpd) on loopback: each retry rule."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import SmtpSettings
from newsletter.model import Tier
from newsletter.send.backends.smtp import SmtpBackend
from newsletter.send.message import Message
from tests.conftest import SmtpRecorder, free_port, use_smtp


def message(n: int, to: str | None = None) -> Message:
    to = to or f"r{n}@example.com"
    data = (
        f"From: Brief <brief@harbourledger.example>\r\nTo: {to}\r\nSubject: n{n}\r\n"
        f"Message-ID: <m{n}@harbourledger.example>\r\n\r\nHello {n}\r\n"
    ).encode()
    return Message(n, to, "", Tier.FREE, {}, "", factory=_Ids(), _data=data)  # type: ignore[arg-type]


class _Ids:
    """Stands in for the MessageFactory: the backend asks it only for the sender and Message-IDs."""

    sender = ("Brief", "brief@harbourledger.example")

    def message_id(self, subscriber_id: int) -> str:
        return f"<m{subscriber_id}@harbourledger.example>"

    def envelope_from(self, subscriber_id: int) -> str:
        return self.sender[1]


def backend(port: int, **settings: object) -> SmtpBackend:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 1,
        "retry_delay": 0.01,
        "timeout": 5,
        **settings,
    }
    return SmtpBackend(SmtpSettings(**values))  # type: ignore[arg-type]


def test_one_connection_carries_many_messages(smtp_server: SmtpRecorder) -> None:
    smtp = backend(smtp_server.port)
    outcomes = smtp.send([message(n) for n in range(10)])
    smtp.close()
    assert [o.state for o in outcomes] == ["sent"] * 10
    assert smtp_server.received() == [f"r{n}@example.com" for n in range(10)]
    assert smtp_server.connections == 1


def test_a_4xx_reply_is_retried_and_a_5xx_reply_fails_that_recipient_alone(
    smtp_server: SmtpRecorder,
) -> None:
    smtp_server.rcpt_replies["r1@example.com"] = ["451 4.3.0 Mailbox busy, try again"]
    smtp_server.rcpt_replies["r2@example.com"] = ["550 5.1.1 No such user here"]
    smtp = backend(smtp_server.port)
    outcomes = smtp.send([message(n) for n in range(4)])
    smtp.close()
    assert [o.state for o in outcomes] == ["sent", "sent", "failed", "sent"]
    assert outcomes[2].error == "550 5.1.1 No such user here"
    assert sorted(smtp_server.received()) == ["r0@example.com", "r1@example.com", "r3@example.com"]
    assert smtp_server.connections == 1  # the connection was reset (RSET) and reused, not dropped


def test_a_4xx_that_persists_gives_up_after_the_retries(smtp_server: SmtpRecorder) -> None:
    smtp_server.rcpt_replies["r0@example.com"] = ["452 4.2.2 Over quota"] * 10
    smtp = backend(smtp_server.port, retries=2)
    [outcome] = smtp.send([message(0)])
    smtp.close()
    assert outcome.state == "failed"
    assert outcome.error == "gave up after 3 attempts: 452 4.2.2 Over quota"
    assert smtp_server.rcpt_replies["r0@example.com"] == ["452 4.2.2 Over quota"] * 7


def test_a_5xx_after_the_data_fails_with_the_server_text(smtp_server: SmtpRecorder) -> None:
    smtp_server.data_replies = ["554 5.7.1 Message rejected as spam"]
    smtp = backend(smtp_server.port)
    outcomes = smtp.send([message(0), message(1)])
    smtp.close()
    assert [(o.state, o.error) for o in outcomes] == [
        ("failed", "554 5.7.1 Message rejected as spam"),
        ("sent", ""),
    ]


def test_a_timeout_after_the_final_dot_is_unknown_and_not_retried(
    smtp_server: SmtpRecorder,
) -> None:
    smtp_server.data_delay = 2.0
    smtp = backend(smtp_server.port, timeout=0.6)
    [outcome] = smtp.send([message(0)])
    smtp.close()
    assert outcome.state == "unknown"
    assert outcome.error.startswith("connection lost after the message was sent: ")
    assert smtp_server.data_attempts == 1  # the server may have it: sending again could double it


def test_a_dropped_connection_is_reopened(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    port = free_port()
    recorder = SmtpRecorder()
    first = Controller(recorder, hostname="127.0.0.1", port=port)
    first.start()
    smtp = backend(port)
    assert smtp.send([message(0)])[0].state == "sent"
    first.stop()
    second = Controller(recorder, hostname="127.0.0.1", port=port)
    second.start()
    try:
        assert smtp.send([message(1)])[0].state == "sent"
    finally:
        smtp.close()
        second.stop()
    assert recorder.received() == ["r0@example.com", "r1@example.com"]
    assert recorder.connections == 2


def test_a_send_through_smtp_records_failures_and_does_not_resend(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    runner = CliRunner()
    use_smtp(sending, smtp_server.port)
    readers = sending / "r.csv"
    readers.write_text("email\n" + "".join(f"r{i}@example.com\n" for i in range(6)))
    runner.invoke(
        cli, ["-w", str(sending), "subscribers", "import", str(readers), "--newsletter", "daily"]
    )
    smtp_server.rcpt_replies["r3@example.com"] = ["550 5.1.1 Unknown user"]
    args = [
        "-w",
        str(sending),
        "send",
        "daily/2025-05-14",
        "--late",
        "--backend",
        "smtp",
        "--yes",
        "--json",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"]) == (5, 1)
    assert report["failures"] == [{"email": "r3@example.com", "error": "550 5.1.1 Unknown user"}]
    again = runner.invoke(cli, args[:-1])
    assert again.exit_code == 3  # a failure is outstanding: said, counted, never silent (#11)
    assert again.stdout == (
        "daily/2025-05-14 was sent already: 5 sent, 1 failed (--retry-failed to send to them"
        " again); nothing to send\n  1 failed: 550 5.1.1 Unknown user\n"
    )
    assert sorted(smtp_server.received()) == [f"r{i}@example.com" for i in range(6) if i != 3]


def test_the_rate_limit_spaces_messages_out(smtp_server: SmtpRecorder) -> None:
    import time

    smtp = backend(smtp_server.port, rate=20)
    started = time.monotonic()
    outcomes = smtp.send([message(n) for n in range(10)])
    elapsed = time.monotonic() - started
    smtp.close()
    assert [o.state for o in outcomes] == ["sent"] * 10
    assert elapsed >= 9 / 20 - 0.02  # ten messages at 20/s: nine gaps of 50 ms
