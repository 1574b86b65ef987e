"""Per-recipient messages: no header injection, escaped values, stable identities."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time

from newsletter.audience.tokens import Signer
from newsletter.config import load_config
from newsletter.model import Recipient, Tier
from newsletter.send.message import IssueContent, MessageFactory
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
