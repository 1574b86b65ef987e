"""Deliver one notice (a sign-up confirmation) at once, through the backend the service is
configured with: the same lookup (`get_backend`) and the same backends as issues."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.notices import Notice
from newsletter.config import Config
from newsletter.send.backends import get_backend
from newsletter.send.backends.base import Outcome


def deliver_notice(config: Config, backend: str, outbox_dir: Path, notice: Notice) -> Outcome:
    """`outbox_dir` is where the outbox backend writes the notice."""
    chosen = get_backend(backend, config, outbox_dir)
    try:
        return chosen.send_notice(notice)
    finally:
        chosen.close()
