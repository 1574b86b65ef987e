"""Notices: the one-off emails the service sends a single person (the sign-up confirmation,
the link that downloads or erases one's data),
as opposed to issues sent to a list. Rendered from templates a publication may override
(`templates/notices/…`). This module holds their content only: `send.notice` delivers them
through the same backends as issues, and `send.message` writes their MIME."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr
from typing import Any

import jinja2

from newsletter.audience.tokens import Signer
from newsletter.config import Config, NewsletterConfig


@dataclass(frozen=True)
class Notice:
    """What a notice says and to whom; its headers are cleaned where they are written."""

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
    """The double opt-in email: one signed link that expires, to a page with a button. The
    link names the newsletters this email names, so it confirms those and nothing else."""
    token = signer.make("confirm", subscriber_id, names=newsletters)
    url = f"{config.publication.root_url}/confirm/{token}"
    titles = [config.newsletters[key].title for key in newsletters]
    first = config.newsletters[newsletters[0]]
    values = {
        "pub": config.publication,
        "colors": config.publication.colors,
        "titles": titles,
        "url": url,
        "days": valid_days,
    }
    subject = f"Confirm your subscription to {_join(titles)}"
    return _notice(config, first, pages, "confirm", email, subject, values, now)


DATA_ACTIONS = ("download", "delete")  # the word a data token carries


def data_request(
    config: Config,
    pages: jinja2.Environment,
    signer: Signer,
    subscriber_id: int,
    email: str,
    action: str,
    now: dt.datetime,
) -> Notice:
    """The email that makes sure the address itself asked for its data or its erasure (a
    preferences link may be a forwarded email's): one signed link that expires in an hour,
    to a page with a button."""
    from newsletter.audience.tokens import DATA_MAX_AGE

    if action not in DATA_ACTIONS:
        raise ValueError(f"no data action {action!r}")
    token = signer.make("data", subscriber_id, names=[action])
    first = next(iter(config.newsletters.values()))
    values = {
        "pub": config.publication,
        "colors": config.publication.colors,
        "action": action,
        "url": f"{config.publication.root_url}/data/{token}",
        "minutes": DATA_MAX_AGE // 60,
    }
    subject = f"Confirm you want to {action} your data"
    return _notice(config, first, pages, "data", email, subject, values, now)


def _notice(
    config: Config,
    newsletter: NewsletterConfig,
    pages: jinja2.Environment,
    kind: str,
    to: str,
    subject: str,
    values: dict[str, Any],
    now: dt.datetime,
) -> Notice:
    """A notice from `newsletter`'s sender, its text and HTML from notices/<kind>.*.j2."""
    sender_name, sender = parseaddr(newsletter.sender)
    return Notice(
        kind=kind,
        to=to,
        subject=subject,
        text=pages.get_template(f"notices/{kind}.txt.j2").render(values),
        html=pages.get_template(f"notices/{kind}.html.j2").render(values),
        sender_name=sender_name or config.publication.name,
        sender=sender,
        reply_to=newsletter.reply_to,
        message_id=make_msgid(kind, domain=sender.rsplit("@", 1)[1]),
        date=now,
    )


def _join(titles: list[str]) -> str:
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
