"""Per-recipient messages: no header injection, escaped values, stable identities."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import time

import pytest

from newsletter.audience.notices import Notice
from newsletter.audience.tokens import Signer
from newsletter.config import load_config
from newsletter.model import Recipient, Tier
from newsletter.send.message import IssueContent, MessageFactory, Text, header, notice_data
from tests.conftest import REPO

NOW = dt.datetime(2025, 5, 14, 6, 0, tzinfo=dt.UTC)
HTML = '<!doctype html><html><body><p>Hi %%name%%</p><a href="%%unsubscribe_url%%">u</a> <p>%%email%%</p></body></html>'
TEXT = "Hi %%name%%\nUnsubscribe: %%unsubscribe_url%%\n"


def factory(subject: str = "Exporters get more help", test: bool = False) -> MessageFactory:
    config = load_config(REPO / "newsletter.toml")
    content = IssueContent(
        "daily", dt.date(2025, 5, 14), subject, {t: HTML for t in Tier}, {t: TEXT for t in Tier}
    )
    return MessageFactory(config, content, Signer("k" * 48), "k" * 48, NOW, test=test)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_a_name_or_subject_cannot_inject_a_header() -> None:
    evil = "Eve\r\nBcc: everyone@example.com\r\n\r\n<script>"
    message = factory(subject="News\r\nBcc: all@example.com").build(
        Recipient(1, "eve@example.com", evil, "free")
    )
    parsed = parse(message.data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "News Bcc: all@example.com"
    assert parsed["To"].addresses[0].display_name == "Eve Bcc: everyone@example.com <script>"
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))


def test_merge_values_are_escaped_in_html_and_plain_in_text() -> None:
    message = factory().build(Recipient(1, "a+b@example.com", '<b>"Bo" & co</b>', "free"))
    parsed = parse(message.data)
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "<p>Hi &lt;b&gt;&quot;Bo&quot; &amp; co&lt;/b&gt;</p>" in html
    assert "<b>" not in html
    assert text.splitlines()[0] == 'Hi <b>"Bo" & co</b>'


def test_non_ascii_subject_and_names_are_encoded() -> None:
    message = factory(subject="Zoë Kwan takes over — 深圳").build(
        Recipient(1, "zoe@example.com", "Zoë Kwan", "free")
    )
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    parsed = parse(message.data)
    assert parsed["Subject"] == "Zoë Kwan takes over — 深圳"
    assert parsed["To"].addresses[0].display_name == "Zoë Kwan"


def test_message_ids_are_unique_per_recipient_and_stable() -> None:
    a = factory().build(Recipient(1, "a@example.com", "", "free"))
    b = factory().build(Recipient(2, "b@example.com", "", "free"))
    time.sleep(0.01)
    again = factory().build(Recipient(1, "a@example.com", "", "free"))
    assert a.message_id != b.message_id
    assert a.message_id == again.message_id
    assert a.message_id.endswith("@harbourledger.example>")
    assert "a@example.com" not in a.message_id


def test_the_test_subject_is_marked() -> None:
    message = factory(test=True).build(Recipient(-1, "editor@example.com", "", "premium"))
    assert parse(message.data)["Subject"] == "[TEST] Exporters get more help"


def test_the_quoted_printable_bodies_decode_to_the_filled_templates() -> None:
    import quopri

    from newsletter.placeholders import fill
    from newsletter.send.message import QuotedTemplate

    page = (REPO / "newsletter/templates/email/base.mjml.j2").read_text()  # long lines, =, tabs
    page = page.replace(
        "</mjml>", "<p>%%name%%\t</p> %%email%% trailing \n%%unsubscribe_url%%</mjml>"
    )
    values = {
        "name": 'Zoë <b> & "co"',
        "email": "z@example.com",
        "unsubscribe_url": "https://u/x?a=1&b=2",
        "preferences_url": "https://p/",
    }
    for for_html in (True, False):
        encoded = QuotedTemplate(page, for_html).fill(values)
        assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
        expected = fill(page, values, for_html=for_html).replace("\n", "\r\n")
        assert quopri.decodestring(encoded).decode("utf-8") == expected


def notice(subject: str, sender_name: str = "The Daily Brief") -> Notice:
    return Notice(
        kind="confirm",
        to="reader@example.net",
        subject=subject,
        text="Confirm: https://newsletters.harbourledger.example/confirm/abc\n",
        html='<p><a href="https://newsletters.harbourledger.example/confirm/abc">Confirm</a></p>',
        sender_name=sender_name,
        sender="brief@harbourledger.example",
        reply_to="Desk <desk@harbourledger.example>",
        message_id="<1.confirm@harbourledger.example>",
        date=NOW,
    )


def subject_line(data: bytes) -> bytes:
    """The Subject header as written, with its folded continuation lines."""
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    match = re.search(rb"^Subject: .*?\r\n(?![ \t])", head, re.MULTILINE | re.DOTALL)
    assert match
    return match.group(0)


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("News\r\nBcc: all@example.com", id="crlf-injection"),
        pytest.param("Zoë Kwan takes over — 深圳, and more " * 4, id="non-ascii-folded"),
    ],
)
def test_a_notice_subject_is_written_exactly_as_an_issue_subject(subject: str) -> None:
    """Notices and issues share the one header writer: a subject with CR/LF is made one line,
    and a long non-ASCII one encoded and folded, byte for byte the same way."""
    issue = factory(subject=subject).build(Recipient(1, "a@example.com", "", "free")).data
    confirm = notice_data(notice(subject))
    assert subject_line(confirm) == subject_line(issue) == header("Subject", Text(subject))
    parsed = parse(confirm)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == parse(issue)["Subject"]
    assert confirm.split(b"\r\n\r\n", 1)[0].isascii()


def test_a_notice_is_a_whole_message_whose_sender_name_cannot_inject_a_header() -> None:
    confirm = notice_data(notice("Confirm", sender_name="Eve\r\nBcc: everyone@example.com"))
    parsed = parse(confirm)
    assert parsed["Bcc"] is None
    assert parsed["From"].addresses[0].display_name == "Eve Bcc: everyone@example.com"
    assert parsed["To"] == "reader@example.net"
    assert parsed["Reply-To"] == "Desk <desk@harbourledger.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == "<1.confirm@harbourledger.example>"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n") == notice("Confirm").text  # CRLF on the wire, as issues
    assert html.rstrip("\r\n") == notice("Confirm").html
