"""Notices: the one-off emails the service sends a single person (the sign-up confirmation),
as opposed to issues sent to a list. Rendered from templates a publication may override
(`templates/notices/…`), delivered by the same backends as issues (`send.notice`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

import jinja2

from newsletter.audience.tokens import Signer
from newsletter.config import Config
from newsletter.send.message import clean


@dataclass(frozen=True)
class Notice:
    kind: str  # "confirm": also the SendGrid category, so its events never count for an issue
    to: str
    subject: str
    text: str
    html: str
    sender_name: str
    sender: str
    reply_to: str | None
    message_id: str
    date: dt.datetime

    @property
    def data(self) -> bytes:
        """The MIME message. The stdlib's SMTP policy refuses CR/LF in any header: values
        are also cleaned first, so a hostile name cannot inject one."""
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{clean(self.sender_name)} <{clean(self.sender)}>"
        message["To"] = clean(self.to)
        if self.reply_to:
            message["Reply-To"] = clean(self.reply_to)
        message["Subject"] = clean(self.subject)
        message["Date"] = format_datetime(self.date)
        message["Message-ID"] = self.message_id
        message["Auto-Submitted"] = "auto-generated"  # no vacation replies to a confirmation
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message.as_bytes()


def confirmation(
    config: Config,
    pages: jinja2.Environment,
    signer: Signer,
    subscriber_id: int,
    email: str,
    newsletters: list[str],
    now: dt.datetime,
    valid_days: int,
) -> Notice:
    """The double opt-in email: one signed link that expires, to a page with a button."""
    token = signer.make("confirm", subscriber_id)
    url = f"{config.publication.root_url}/confirm/{token}"
    titles = [config.newsletters[key].title for key in newsletters]
    first = config.newsletters[newsletters[0]]
    sender_name, sender = parseaddr(first.sender)
    values = {
        "pub": config.publication,
        "colors": config.publication.colors,
        "titles": titles,
        "url": url,
        "days": valid_days,
    }
    subject = f"Confirm your subscription to {_join(titles)}"
    return Notice(
        kind="confirm",
        to=email,
        subject=subject,
        text=pages.get_template("notices/confirm.txt.j2").render(values),
        html=pages.get_template("notices/confirm.html.j2").render(values),
        sender_name=sender_name or config.publication.name,
        sender=sender,
        reply_to=first.reply_to,
        message_id=make_msgid("confirm", domain=sender.rsplit("@", 1)[1]),
        date=now,
    )


def _join(titles: list[str]) -> str:
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
