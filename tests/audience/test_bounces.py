"""Classifying what comes back to the bounce address (#14), on real bounce messages:
flufl.bounce's own corpus (tests/data/bounces/flufl, with its license), RFC 5965 feedback
reports, auto-replies, and VERP tokens that survive a garbled report."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.audience.bounces import Classifier, severity, status_of
from newsletter.audience.tokens import BounceToken, VerpSigner

DATA = Path(__file__).resolve().parent.parent / "data" / "bounces"
SECRET = "s" * 48
BOUNCES = "bounces@news.example.com"

# (file, the addresses flufl.bounce's own tests/test_detectors.py expect, what we make of it):
# permanent failures are hard bounces; its temporary ones are soft bounces, or delay warnings
# where an RFC 3464 report says `Action: delayed`; dsn_02 is `failed` with status 4.4.7
# (delivery time expired), transient by RFC 3463 where flufl.bounce calls it permanent
CORPUS = [
    ("aol_01", ["screenname@aol.com"], "hard"),
    ("caiwireless_01", ["userx@example.com"], "hard"),
    ("dsn_01", ["userx@example.com"], "hard"),
    ("dsn_02", ["zzzzz@example.uk"], "soft"),
    ("dsn_03", ["userx@example.be"], "hard"),
    ("dsn_04", ["userx@example.ch"], "hard"),
    ("dsn_05", ["userx@example.cz"], "delayed"),
    ("dsn_06", ["userx@example.com"], "delayed"),
    ("dsn_07", ["userx@example.nz"], "delayed"),
    ("dsn_08", ["userx@example.de"], "delayed"),
    ("dsn_09", ["userx@example.com"], "hard"),
    ("dsn_10", ["anne.person@dom.ain"], "hard"),
    ("dsn_11", ["joem@example.com"], "hard"),
    ("dsn_12", ["userx@example.jp"], "hard"),
    ("dsn_13", ["userx@example.com"], "hard"),
    ("dsn_14", ["userx@example.com.dk"], "hard"),
    ("dsn_15", ["userx@example.com"], "hard"),
    ("dsn_16", ["userx@example.com"], "hard"),
    ("dsn_17", ["userx@example.fi"], "soft"),
    ("dsn_18", ["email@replaced.net"], "hard"),
    ("dumbass_01", [], "unknown"),
    ("exim_01", ["userx@its.example.nl"], "hard"),
    ("groupwise_01", ["userx@example.EDU"], "hard"),
    ("hotpop_01", ["userx@example.com"], "hard"),
    ("llnl_01", ["user1@example.gov"], "hard"),
    ("microsoft_01", ["userx@example.COM"], "hard"),
    ("microsoft_02", ["userx@example.COM"], "hard"),
    ("microsoft_03", ["userx@example.com"], "hard"),
    ("microsoft_04", ["userx@example.COM"], "hard"),
    ("netscape_01", ["aaaaa@corel.com", "bbbbb@corel.com"], "hard"),
    ("postfix_01", ["xxxxx@local.ie"], "hard"),
    ("postfix_02", ["yyyyy@digicool.com"], "hard"),
    ("postfix_03", ["ttttt@ggggg.com"], "hard"),
    ("postfix_04", ["userx@mail1.example.com"], "hard"),
    ("postfix_05", ["userx@example.net"], "hard"),
    ("qmail_01", ["userx@example.de"], "hard"),
    ("qmail_02", ["userx@example.com"], "hard"),
    ("qmail_03", ["userx@example.jp"], "hard"),
    ("qmail_04", ["userx@example.au"], "hard"),
    ("qmail_05", ["userx@example.com"], "hard"),
    ("qmail_06", ["ntl@xxx.com"], "hard"),
    ("qmail_07", ["user@example.net"], "hard"),
    ("qmail_08", [], "autoreply"),
    ("sendmail_01", ["zzzzz@nfg.nl", "zzzzz@shaft.coal.nl"], "hard"),
    ("simple_01", ["bbbsss@example.com"], "hard"),
    ("simple_02", ["userx@example.net"], "hard"),
    ("simple_03", ["userx@example.za"], "soft"),
    ("simple_04", ["userx@example.com"], "hard"),
    ("simple_05", ["userx@example.net"], "hard"),
    ("simple_06", ["userx@example.com"], "hard"),
    ("simple_21", ["userx@example.com"], "soft"),
    ("simple_35", ["calvin@example.com"], "soft"),
    ("sina_01", ["userx@sina.com", "usery@sina.com"], "hard"),
    ("smtp32_01", ["userx@example.ph"], "hard"),
    ("yahoo_01", ["userx@example.com"], "hard"),
    ("yahoo_02", ["userx@example.es"], "hard"),
    ("yahoo_03", ["userx@example.com"], "hard"),
    ("yahoo_04", ["userx@example.es", "usery@example.uk"], "hard"),
    ("yahoo_05", ["userx@example.com", "usery@example.com"], "hard"),
    ("yahoo_11", ["bad_user@aol.com"], "hard"),
]


@pytest.mark.parametrize(("name", "addresses", "kind"), CORPUS, ids=[c[0] for c in CORPUS])
def test_each_bounce_of_the_corpus_names_its_failed_address(
    name: str, addresses: list[str], kind: str
) -> None:
    result = Classifier().classify((DATA / "flufl" / f"{name}.txt").read_bytes())
    assert sorted({f.email for f in result.failures}) == addresses
    found = "/".join(sorted({f.severity for f in result.failures})) or result.kind
    assert found == kind
    assert result.message_id  # what makes processing it twice change nothing


def test_a_standard_dsn_gives_the_status_and_the_diagnostic() -> None:
    result = Classifier().classify((DATA / "flufl" / "dsn_14.txt").read_bytes())
    assert result.how == "dsn"
    [failure] = result.failures
    assert (failure.email, failure.severity, failure.status) == (
        "userx@example.com.dk",
        "hard",
        "5.1.1",  # from the diagnostic: this report has no Status field
    )
    assert failure.diagnostic == "SMTP; 550 5.1.1 User unknown"


@pytest.mark.parametrize(
    ("reply", "code", "expected"),
    [
        ("550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", 550, "hard"),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound", 550, "hard"),
        ("550 5.2.1 Mailbox disabled", 550, "hard"),
        ("552 5.2.2 Mailbox full", 552, "soft"),
        ("554 5.7.1 Message rejected as spam", 554, "blocked"),
        ("553 5.1.8 Sender address domain does not exist", 553, "blocked"),  # ours, not theirs
        ("450 4.2.1 Mailbox busy", 450, "soft"),
        ("550 No such user", 550, "hard"),  # no enhanced code: the basic one decides
        ("554 Transaction failed", 554, "blocked"),
    ],
)
def test_an_smtp_status_is_read_by_rfc_3463(reply: str, code: int, expected: str) -> None:
    assert severity(status_of(reply), code) == expected


def test_a_feedback_report_is_a_complaint_naming_the_recipient() -> None:
    result = Classifier().classify((DATA / "arf_rfc5965.eml").read_bytes())
    assert (result.kind, result.how, result.feedback_type) == ("complaint", "arf", "abuse")
    assert result.complainant == "user@example.com"


def test_a_redacted_feedback_report_is_matched_by_the_original_messages_verp_address() -> None:
    verp = VerpSigner(SECRET)
    data = _arf(return_path=verp.address(BOUNCES, "daily/2026-01-05", 42), rcpt="")
    result = Classifier(verp, BOUNCES).classify(data)
    assert result.kind == "complaint"
    assert result.complainant == ""  # the provider redacted it…
    assert result.token == BounceToken("daily/2026-01-05", 42)  # …the token names them


def test_a_feedback_report_that_is_not_abuse_changes_nothing() -> None:
    result = Classifier().classify(_arf(feedback="not-spam"))
    assert (result.kind, result.feedback_type) == ("report", "not-spam")


def test_an_out_of_office_reply_is_not_a_bounce() -> None:
    reply = EmailMessage()
    reply["From"] = "reader@example.com"
    reply["To"] = "bounces+x@news.example.com"
    reply["Subject"] = "Out of office: The Daily Brief"
    reply["Auto-Submitted"] = "auto-replied"
    reply["Message-ID"] = "<ooo-1@example.com>"
    reply.set_content("I am away until Monday. For urgent matters call the desk.")
    assert Classifier().classify(reply.as_bytes()).kind == "autoreply"
    # the corpus's own auto-reply (Precedence: auto_reply) too
    qmail = Classifier().classify((DATA / "flufl" / "qmail_08.txt").read_bytes())
    assert qmail.kind == "autoreply"


def test_a_garbled_report_to_a_verp_address_still_names_its_recipient() -> None:
    verp = VerpSigner(SECRET)
    garbled = EmailMessage()
    garbled["From"] = "MAILER-DAEMON@mx.example.org"
    garbled["To"] = verp.address(BOUNCES, "daily/2026-01-05", 7)
    garbled["Subject"] = "Undeliverable"
    garbled["Message-ID"] = "<garbled-1@mx.example.org>"
    garbled.set_content("Your message could not be handled. Reason: ###???###")
    result = Classifier(verp, BOUNCES).classify(garbled.as_bytes())
    assert result.kind == "bounce"
    assert result.token == BounceToken("daily/2026-01-05", 7)
    # a forged token (a MAC that does not verify) names nobody
    garbled.replace_header("To", f"bounces+7.daily.20260105.{'a' * 13}@news.example.com")
    assert Classifier(verp, BOUNCES).classify(garbled.as_bytes()).kind == "unknown"


def test_a_message_from_a_person_is_not_understood() -> None:
    note = EmailMessage()
    note["From"] = "reader@example.com"
    note["To"] = BOUNCES
    note["Subject"] = "Why did I get this?"
    note.set_content("Hello, who is this?")
    result = Classifier().classify(note.as_bytes())
    assert result.kind == "unknown"
    assert result.message_id.startswith("sha256:")  # no Message-ID: the bytes' digest


def _arf(feedback: str = "abuse", rcpt: str = "user@example.com", return_path: str = "") -> bytes:
    """A feedback report as the providers' loops send them (RFC 5965 section 3)."""
    original = (
        (f"Return-Path: <{return_path}>\r\n" if return_path else "")
        + "From: The Daily Brief <brief@harbourledger.example>\r\n"
        "To: [redacted]\r\nSubject: The Daily Brief\r\n"
        "Message-ID: <daily.20260105.42.abc@harbourledger.example>\r\n\r\nHello\r\n"
    )
    fields = f"Feedback-Type: {feedback}\r\nUser-Agent: Loop/1.0\r\nVersion: 1\r\n" + (
        f"Original-Rcpt-To: <{rcpt}>\r\n" if rcpt else ""
    )
    return (
        "From: <fbl@provider.example>\r\nTo: <" + BOUNCES + ">\r\n"
        "Subject: complaint\r\nMessage-ID: <fbl-1@provider.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        "--B\r\nContent-Type: message/feedback-report\r\n\r\n" + fields + "\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n" + original + "--B--\r\n"
    ).encode()


def test_a_report_carrying_the_original_headers_names_the_issue_but_no_subscriber() -> None:
    """Without VERP (another tool's bounce address), the returned headers' X-Newsletter-Issue
    files the bounce under its issue; the subscriber is found by the reported address."""
    headers = (
        "From: The Daily Brief <brief@harbourledger.example>\r\n"
        "To: r3@example.com\r\nX-Newsletter-Issue: daily/2026-01-05\r\n"
    )
    report = (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: brief@harbourledger.example\r\n"
        "Subject: Undelivered\r\nMessage-ID: <h-1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nNo.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; r3@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers + "--B--\r\n"
    ).encode()
    result = Classifier().classify(report)
    assert (result.kind, result.issue, result.token) == ("bounce", "daily/2026-01-05", None)
    assert [f.email for f in result.failures] == ["r3@example.com"]
    forged = report.replace(b"daily/2026-01-05", b"../../etc")
    assert Classifier().classify(forged).issue is None
