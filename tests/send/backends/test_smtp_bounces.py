"""Bounces known at once over SMTP (#14): the VERP envelope sender, and a real SMTP server
(aiosmtpd) refusing chosen recipients with 5xx and 4xx replies."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from newsletter.audience.tokens import BounceToken, VerpSigner
from newsletter.cli import cli
from tests.conftest import SmtpRecorder, use_smtp

ISSUE = "daily/2025-05-14"
SECRET = "test-secret-" + "x" * 40  # the `sending` fixture's


def _import(runner: CliRunner, ws: Path, n: int) -> None:
    readers = ws / "r.csv"
    readers.write_text("email\n" + "".join(f"r{i}@example.com\n" for i in range(n)))
    result = runner.invoke(
        cli, ["-w", str(ws), "subscribers", "import", str(readers), "--newsletter", "daily"]
    )
    assert result.exit_code == 0, result.output


def _send(runner: CliRunner, ws: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = ["-w", str(ws), "send", ISSUE, "--late", "--backend", "smtp", "--yes", "--json"]
    return runner.invoke(cli, [*args, *extra])


def _listing(runner: CliRunner, ws: Path) -> dict[str, dict[str, object]]:
    result = runner.invoke(cli, ["-w", str(ws), "subscribers", "list", "--json"])
    return {e["email"]: e for e in json.loads(result.stdout)}


def _events(ws: Path) -> list[tuple[str, str, str]]:
    """The delivery events stored, as `stats` and the suppression rules see them."""
    import os

    from sqlalchemy import select

    from newsletter.store import open_store
    from newsletter.store.schema import delivery_events as t

    store = open_store(os.environ["NEWSLETTER_DATABASE_URL"])
    with store.begin() as conn:
        rows = conn.execute(select(t.c.event, t.c.detail, t.c.diagnostic)).all()
    store.close()
    return [(r[0], r[1], r[2]) for r in rows]


def _subscriber_id(data: bytes) -> int:
    """From the message's Message-ID, <daily.20250514.<id>.<mac>@…>."""
    [line] = [x for x in data.split(b"\r\n") if x.startswith(b"Message-ID: ")]
    return int(line.split(b".")[2])


def test_each_message_goes_out_from_its_own_verp_address(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    runner = CliRunner()
    use_smtp(sending, smtp_server.port, bounce_address="bounces@news.example.com")
    _import(runner, sending, 3)
    assert _send(runner, sending).exit_code == 0
    verp = VerpSigner(SECRET)
    senders = {mail_from: data for mail_from, _, data in smtp_server.messages}
    assert len(senders) == 3  # one address per recipient
    for mail_from, data in senders.items():
        local, domain = mail_from.split("@")
        assert domain == "news.example.com"
        assert local.startswith("bounces+")
        assert "example.com" not in local and "r0" not in local  # no address in clear
        assert verp.read(local.split("+", 1)[1]) == BounceToken(ISSUE, _subscriber_id(data))
    # the From header is the newsletter's own, whatever the envelope says
    _, _, data = smtp_server.messages[0]
    assert b"\r\nFrom: " in b"\r\n" + data and b"bounces+" not in data


def test_without_a_bounce_address_the_envelope_sender_is_the_from_address(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    runner = CliRunner()
    use_smtp(sending, smtp_server.port)
    _import(runner, sending, 1)
    assert _send(runner, sending).exit_code == 0
    [(mail_from, _, _)] = smtp_server.messages
    assert "+" not in mail_from and mail_from.endswith("@harbourledger.example")


def test_immediate_refusals_are_bounces_and_the_send_goes_on(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    runner = CliRunner()
    use_smtp(sending, smtp_server.port, bounce_address="bounces@news.example.com", retries=1)
    _import(runner, sending, 5)
    smtp_server.rcpt_replies["r1@example.com"] = ["550 5.1.1 <r1@example.com>: No such user"]
    smtp_server.rcpt_replies["r2@example.com"] = ["452 4.2.2 Mailbox full"] * 2  # both attempts
    smtp_server.rcpt_replies["r3@example.com"] = ["554 5.7.1 Message rejected as spam"]
    result = _send(runner, sending)
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"]) == (2, 3)  # r0 and r4 went out all the same
    assert sorted(smtp_server.received()) == ["r0@example.com", "r4@example.com"]

    people = _listing(runner, sending)
    # 5.1.1: no such user, suppressed at once; 4xx: a soft bounce, counted, not suppressed;
    # 5.7.1: refused for the message's sake (policy), not the address's
    assert people["r1@example.com"]["suppressed"] == "bounce"
    assert not people["r2@example.com"]["suppressed"]
    assert not people["r3@example.com"]["suppressed"]

    stats = runner.invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    figures = json.loads(stats.stdout)
    assert (figures["bounced"], figures["blocked"]) == (1, 1)

    assert sorted(_events(sending)) == [
        ("bounce", "blocked", "554 5.7.1 Message rejected as spam"),
        ("bounce", "bounce", "550 5.1.1 <r1@example.com>: No such user"),
        ("bounce", "soft", "452 4.2.2 Mailbox full"),
    ]

    # a suppressed address is never mailed again, even by --retry-failed
    smtp_server.messages.clear()
    again = _send(runner, sending, "--retry-failed")
    assert "r1@example.com" not in smtp_server.received()
    assert sorted(smtp_server.received()) == ["r2@example.com", "r3@example.com"], again.output


def test_four_xx_refusals_over_the_threshold_suppress_as_a_soft_bounce(
    sending: Path, smtp_server: SmtpRecorder
) -> None:
    runner = CliRunner()
    use_smtp(sending, smtp_server.port, retries=0)
    config = sending / "newsletter.toml"
    config.write_text(config.read_text() + "\n[bounces]\nsoft_limit = 2\nsoft_days = 14\n")
    _import(runner, sending, 2)
    smtp_server.rcpt_replies["r1@example.com"] = ["451 4.3.0 Try again later"] * 10
    _send(runner, sending)
    assert not _listing(runner, sending)["r1@example.com"]["suppressed"]  # one: counted
    _send(runner, sending, "--retry-failed")
    assert _listing(runner, sending)["r1@example.com"]["suppressed"] == "soft-bounce"  # two


def test_a_notice_goes_out_from_the_bare_bounce_address(smtp_server: SmtpRecorder) -> None:
    """A confirmation email names no subscriber yet: its bounces come back to the bounce
    mailbox without a token, and are matched there by address."""
    import datetime as dt

    from newsletter.audience.notices import Notice
    from newsletter.config import SmtpSettings
    from newsletter.send.backends.smtp import SmtpBackend

    settings = SmtpSettings(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        timeout=5,
        bounce_address="bounces@news.example.com",
    )
    backend = SmtpBackend(settings)
    notice = Notice(
        "confirm",
        "new@example.com",
        "Confirm",
        "text",
        "<p>html</p>",
        "Brief",
        "brief@harbourledger.example",
        None,
        "<n1@harbourledger.example>",
        dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
    )
    assert backend.send_notice(notice).state == "sent"
    backend.close()
    [(mail_from, tos, data)] = smtp_server.messages
    assert (mail_from, tos) == ("bounces@news.example.com", ["new@example.com"])
    assert b"From: Brief <brief@harbourledger.example>" in data


def test_a_refused_envelope_sender_is_no_bounce_of_the_recipient(
    smtp_server: SmtpRecorder,
) -> None:
    """553 to MAIL FROM is about us (a sender domain the server distrusts): the recipient
    fails for now, with the reason, but nothing is recorded against their address."""
    from newsletter.config import SmtpSettings
    from newsletter.send.backends.smtp import SmtpBackend

    async def refuse_sender(server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        return "553 5.1.8 Sender address rejected: Domain not found"

    smtp_server.handle_MAIL = refuse_sender  # type: ignore[attr-defined]
    backend = SmtpBackend(
        SmtpSettings(host="127.0.0.1", port=smtp_server.port, security="none", timeout=5)
    )
    outcome = backend.deliver(
        "brief@harbourledger.example", "r1@example.com", b"Subject: x\r\n\r\nx\r\n", "<m@x>"
    )
    backend.close()
    assert outcome.state == "failed"
    assert outcome.error == "553 5.1.8 Sender address rejected: Domain not found"
    assert outcome.refusal is None
    # and a refused recipient does carry one
    del smtp_server.handle_MAIL  # type: ignore[attr-defined]
    smtp_server.rcpt_replies["r2@example.com"] = ["550 5.1.1 No such user"]
    backend = SmtpBackend(
        SmtpSettings(host="127.0.0.1", port=smtp_server.port, security="none", timeout=5)
    )
    refused = backend.deliver(
        "b@harbourledger.example", "r2@example.com", b"Subject: x\r\n\r\nx\r\n", "<m2@x>"
    )
    backend.close()
    assert refused.refusal is not None and refused.refusal.permanent
