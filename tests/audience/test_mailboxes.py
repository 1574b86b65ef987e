"""`newsletter bounces process SOURCE` (#14) on a Maildir and an mbox: bounces to the VERP
addresses of a real send (aiosmtpd), complaints, auto-replies; twice changes nothing; the
soft-bounce threshold; --dry-run and --keep. (IMAP: test_mailboxes_imap.py.)"""

from __future__ import annotations

import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import SmtpRecorder, use_smtp

ISSUE = "daily/2025-05-14"
BOUNCES = "bounces@news.example.com"


def dsn(to: str, recipient: str, status: str, n: int, action: str = "failed") -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes them."""
    msg = EmailMessage()
    msg["From"] = "MAILER-DAEMON@mx.example.org (Mail Delivery System)"
    msg["To"] = to
    msg["Subject"] = "Undelivered Mail Returned to Sender"
    msg["Message-ID"] = f"<dsn-{n}@mx.example.org>"
    msg["Date"] = "Wed, 14 May 2025 09:00:00 +0000"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("I'm sorry to have to inform you that your message could not be delivered.")
    report = EmailMessage()
    report.set_content("")
    status_part = (
        "Reporting-MTA: dns; mx.example.org\n\n"
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {'550' if status[0] == '5' else '452'} {status} mailbox says no\n"
    )
    msg.make_mixed()
    msg.replace_header(
        "Content-Type", 'multipart/report; report-type=delivery-status; boundary="R"'
    )
    msg.set_boundary("R")
    from email import message_from_string

    part = message_from_string(f"Content-Type: message/delivery-status\n\n{status_part}")
    msg.attach(part)
    return msg.as_bytes()


def note(subject: str, n: int, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "reader@example.com"
    msg["To"] = BOUNCES
    msg["Subject"] = subject
    msg["Message-ID"] = f"<note-{n}@example.com>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello")
    return msg.as_bytes()


@pytest.fixture
def sent(sending: Path, smtp_server: SmtpRecorder) -> dict[str, str]:
    """The sample issue sent to r0…r5 through a real SMTP server: recipient → VERP sender."""
    use_smtp(sending, smtp_server.port, bounce_address=BOUNCES)
    send_to_readers(sending, 6)
    return {tos[0]: mail_from for mail_from, tos, _ in smtp_server.messages}


def send_to_readers(ws: Path, count: int) -> None:
    """Import r0…r(count-1) and send them the sample issue through the configured SMTP."""
    runner = CliRunner()
    readers = ws / "r.csv"
    readers.write_text("email\n" + "".join(f"r{i}@example.com\n" for i in range(count)))
    runner.invoke(
        cli, ["-w", str(ws), "subscribers", "import", str(readers), "--newsletter", "daily"]
    )
    args = ["-w", str(ws), "send", ISSUE, "--late", "--backend", "smtp", "--yes"]
    assert runner.invoke(cli, args).exit_code == 0


def process(ws: Path, source: Path | str, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli, ["-w", str(ws), "bounces", "process", str(source), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def suppressed(ws: Path) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["-w", str(ws), "subscribers", "list", "--json"])
    return {e["email"]: e["suppressed"] for e in json.loads(result.stdout) if e["suppressed"]}


def fill(box: mailbox.Mailbox, messages: list[bytes]) -> None:  # type: ignore[type-arg]
    for data in messages:
        box.add(data)
    box.close()  # an mbox's file closed (a Maildir has none open)


def the_mail(sent: dict[str, str]) -> list[bytes]:
    return [
        # a hard bounce to r1's VERP address whose report names another (forwarded) address
        dsn(sent["r1@example.com"], "r1.forwarded@elsewhere.example", "5.1.1", 1),
        # a delay warning for r2: nothing changes
        dsn(sent["r2@example.com"], "r2@example.com", "4.4.1", 2, action="delayed"),
        # a bounce that came back without VERP (another tool's message): by address
        dsn(BOUNCES, "r3@example.com", "5.1.1", 3),
        # an out-of-office reply
        note("Out of office", 4, Auto_Submitted="auto-replied"),
        # a person writing to the bounce address
        note("Why did I get this?", 5),
        # a complaint through a provider's feedback loop (RFC 5965), naming r4
        (Path(__file__).parent.parent / "data" / "bounces" / "arf_rfc5965.eml")
        .read_bytes()
        .replace(b"user@example.com", b"r4@example.com"),
    ]


def test_a_maildir_is_processed_once_and_filed_away(sent: dict[str, str], sending: Path) -> None:
    box_path = sending / "Maildir"
    box = mailbox.Maildir(box_path, create=True)
    fill(box, the_mail(sent))

    report = process(sending, box_path)
    assert (report["read"], report["hard"], report["delayed"]) == (6, 2, 1)
    assert (report["complaints"], report["autoreplies"], report["already"]) == (1, 1, 0)
    assert [u["subject"] for u in report["unknown"]] == ["Why did I get this?"]  # type: ignore[index]
    assert report["suppressed"] == 3
    assert suppressed(sending) == {
        "r1@example.com": "bounce",  # by its VERP token, whatever the report's address
        "r3@example.com": "bounce",
        "r4@example.com": "complaint",
    }
    # understood messages moved to the `processed` folder; the unknown one stays
    processed = box.get_folder("processed")
    assert len(processed) == 5
    [left] = [box.get_bytes(k) for k in box.keys()]
    assert b"Why did I get this?" in left

    # processing again changes nothing; a copy of a processed message is recognised
    fill(box, [the_mail(sent)[0]])
    again = process(sending, box_path)
    assert (again["read"], again["already"], again["suppressed"], again["hard"]) == (2, 1, 0, 0)
    stats = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    figures = json.loads(stats.stdout)
    # the issue's figures count what names it: r1's bounce and r2's delay came back to their
    # VERP addresses; r3's bounce and r4's complaint (no VERP) count for no issue
    assert (figures["bounced"], figures["complained"], figures["deferred"]) == (1, 0, 1)


def test_an_mbox_is_read_and_left_as_it_is(sent: dict[str, str], sending: Path) -> None:
    path = sending / "bounces.mbox"
    fill(mailbox.mbox(path), the_mail(sent))
    before = path.read_bytes()
    report = process(sending, path)
    assert (report["read"], report["hard"], report["complaints"], report["moved"]) == (6, 2, 1, 0)
    assert path.read_bytes() == before
    assert process(sending, path)["already"] == 5  # all but the unknown one


def test_a_dry_run_changes_nothing_and_says_what_would(sent: dict[str, str], sending: Path) -> None:
    box_path = sending / "Maildir"
    fill(mailbox.Maildir(box_path, create=True), the_mail(sent))
    result = CliRunner().invoke(
        cli, ["-w", str(sending), "bounces", "process", str(box_path), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"dry run: {box_path}: 6 message(s): 2 hard bounce,")
    assert "3 address(es) would be suppressed; 0 message(s) moved" in result.stdout
    assert "Why did I get this?" in result.stdout
    assert suppressed(sending) == {}
    assert len(mailbox.Maildir(box_path, create=False)) == 6
    # and a real run afterwards does it all
    assert process(sending, box_path, "--keep")["suppressed"] == 3
    assert len(mailbox.Maildir(box_path, create=False)) == 6  # --keep: nothing moved


def test_soft_bounces_over_the_threshold_suppress(sent: dict[str, str], sending: Path) -> None:
    config = sending / "newsletter.toml"
    config.write_text(config.read_text() + "\n[bounces]\nsoft_limit = 3\nsoft_days = 14\n")
    path = sending / "bounces.mbox"
    fill(
        mailbox.mbox(path),
        [dsn(sent["r5@example.com"], "r5@example.com", "4.2.2", n) for n in (1, 2)],
    )
    assert process(sending, path)["soft"] == 2
    assert suppressed(sending) == {}  # two of three
    fill(mailbox.mbox(path), [dsn(sent["r5@example.com"], "r5@example.com", "4.2.2", 1)])  # again
    assert process(sending, path)["soft"] == 0
    assert suppressed(sending) == {}  # a message counts once
    fill(mailbox.mbox(path), [dsn(sent["r5@example.com"], "r5@example.com", "4.2.2", 3)])
    assert process(sending, path)["suppressed"] == 1
    assert suppressed(sending) == {"r5@example.com": "soft-bounce"}


def test_soft_bounces_older_than_the_window_do_not_count(
    sent: dict[str, str], sending: Path
) -> None:
    config = sending / "newsletter.toml"
    config.write_text(config.read_text() + "\n[bounces]\nsoft_limit = 2\nsoft_days = 14\n")
    path = sending / "bounces.mbox"
    old = dsn(sent["r5@example.com"], "r5@example.com", "4.2.2", 1).replace(
        b"14 May 2025", b"14 Apr 2025"
    )
    fill(mailbox.mbox(path), [old, dsn(sent["r5@example.com"], "r5@example.com", "4.2.2", 2)])
    assert process(sending, path)["soft"] == 2
    assert suppressed(sending) == {}  # a month apart: one in each window


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere", "nowhere: no such Maildir or mbox file"),
        ("imap://bounces@127.0.0.1/INBOX", "set NEWSLETTER_IMAP_PASSWORD"),
    ],
)
def test_a_source_that_cannot_be_read_is_one_line(
    sending: Path, source: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_IMAP_PASSWORD", raising=False)
    monkeypatch.chdir(sending)
    result = CliRunner().invoke(cli, ["-w", str(sending), "bounces", "process", source])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_folder_that_is_not_a_maildir_is_refused(sending: Path) -> None:
    (sending / "folder").mkdir()
    result = CliRunner().invoke(
        cli, ["-w", str(sending), "bounces", "process", str(sending / "folder")]
    )
    assert result.exit_code == 1
    assert "not a Maildir" in result.stderr


def feedback_report(original: bytes, n: int) -> bytes:
    """A provider's complaint (RFC 5965) that redacts the recipient everywhere: no
    Original-Rcpt-To, the original's To blanked; its Message-ID kept, as providers keep it."""
    head, _, _ = original.partition(b"\r\n\r\n")
    kept = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"to:", b"list-unsubscribe:"))
    ]
    quoted = b"\r\n".join([*kept, b"To: [redacted]"]) + b"\r\n\r\n(body removed)\r\n"
    return (
        b"From: <fbl@provider.example>\r\nTo: <brief@harbourledger.example>\r\n"
        b"Subject: complaint\r\nMessage-ID: <fbl-%d@provider.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        b"--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\nUser-Agent: Loop/1.0\r\nVersion: 1\r\n\r\n"
        b"--B\r\nContent-Type: message/rfc822\r\n\r\n" % n + quoted + b"--B--\r\n"
    )


def test_a_redacted_complaint_without_verp_is_matched_by_our_signed_message_id(
    sending: Path, smtp_server: SmtpRecorder, tmp_path: Path
) -> None:
    """No bounce address (so no VERP), and a feedback loop that hides who complained: the
    signed Message-ID of our message still names the subscriber; a forged one names nobody."""
    use_smtp(sending, smtp_server.port)
    send_to_readers(sending, 3)
    data = {tos[0]: raw for _, tos, raw in smtp_server.messages}
    complaint = feedback_report(data["r1@example.com"], 1)
    # r2's Message-ID with r0's subscriber number in it: the signature no longer matches
    r2 = data["r2@example.com"]
    ids = {a: raw.split(b"\r\nMessage-ID: ")[1].split(b"\r\n")[0] for a, raw in data.items()}
    forged_id = ids["r2@example.com"].replace(
        b"." + ids["r2@example.com"].split(b".")[2] + b".",
        b"." + ids["r0@example.com"].split(b".")[2] + b".",
    )
    assert forged_id != ids["r2@example.com"]
    forged = feedback_report(r2.replace(ids["r2@example.com"], forged_id), 2)
    box = mailbox.Maildir(tmp_path / "Maildir")
    fill(box, [complaint, forged])

    report = process(sending, tmp_path / "Maildir")

    assert report["complaints"] == 2
    assert suppressed(sending) == {"r1@example.com": "complaint"}
