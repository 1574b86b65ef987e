"""The ways a message leaves: a local outbox of .eml files, SMTP, or SendGrid's API.

`get_backend` imports only the chosen module. The SMTP and outbox backends sign with DKIM
when [dkim] is configured (SendGrid signs with the keys of its own domain authentication)."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.send import dkim
from newsletter.send.backends.base import Backend

NAMES = ("outbox", "smtp", "sendgrid")


def get_backend(name: str, config: Config, outbox_dir: Path, send_at: int | None = None) -> Backend:
    if name == "outbox":
        from newsletter.send.backends.outbox import OutboxBackend

        return OutboxBackend(outbox_dir, dkim=dkim.load(config))
    if name == "smtp":
        from newsletter.send.backends.smtp import SmtpBackend

        return SmtpBackend(config.smtp, dkim=dkim.load(config))
    if name == "sendgrid":
        from newsletter.send.backends.sendgrid import SendGridBackend

        return SendGridBackend(config.sendgrid, send_at=send_at)
    raise NewsletterError(f"unknown backend '{name}' (use one of: {', '.join(NAMES)})")
