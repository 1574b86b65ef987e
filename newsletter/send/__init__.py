"""An issue to its recipients, exactly once: `plan` checks everything that can stop a send
before it starts, `sender` runs it; `message` builds what each recipient gets and
`backends` hand it over. This module only re-exports what the CLI and callers use."""

from __future__ import annotations

from newsletter.errors import BackendRefused, SendError
from newsletter.send.plan import (
    SendOptions,
    SendPlan,
    issue_key,
    plan_send,
    sample,
    send_window_end,
)
from newsletter.send.sender import SendReport, run_send

__all__ = [
    "BackendRefused",
    "SendError",
    "SendOptions",
    "SendPlan",
    "SendReport",
    "issue_key",
    "plan_send",
    "run_send",
    "sample",
    "send_window_end",
]
