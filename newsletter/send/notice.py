"""Deliver one notice (a sign-up confirmation) through the configured backend, at once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from newsletter.audience.notices import Notice
from newsletter.build.output import atomic_write
from newsletter.config import Config
from newsletter.send.backends.base import Outcome


def deliver_notice(config: Config, backend: str, outbox_dir: Path, notice: Notice) -> Outcome:
    if backend == "outbox":
        return _to_outbox(outbox_dir, notice)
    if backend == "smtp":
        from newsletter.send.backends.smtp import SmtpBackend

        smtp = SmtpBackend(config.smtp)
        try:
            return smtp.send_notice(notice)
        finally:
            smtp.close()
    from newsletter.send.backends.sendgrid import SendGridBackend

    return SendGridBackend(config.sendgrid).send_notice(notice)


def _to_outbox(folder: Path, notice: Notice) -> Outcome:
    """Written atomically under a unique name; concurrent sign-ups never touch each other."""
    digest = hashlib.sha256(notice.message_id.encode()).hexdigest()[:12]
    path = folder / f"{notice.date:%Y%m%dT%H%M%S}-{notice.kind}-{digest}.eml"
    try:
        atomic_write(path, notice.data)
    except OSError as exc:
        return Outcome("failed", error=f"cannot write {path}: {exc.strerror}")
    return Outcome("sent", provider_id=path.name)
