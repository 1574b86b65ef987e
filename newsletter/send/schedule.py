"""Scheduled editions: when each issue goes out, and what is due, missed or not yet.

An issue's time is its front matter's `send_at`, else its newsletter's `send_time` on the
issue's date (in the newsletter's timezone, else the publication's) when that date is one of
its `send_days`. It may go out from that time until `send_window_hours` later; after that
it is missed, never sent late by the scheduler (a daily brief is not sent in the afternoon).

The rule is a function of the clock (`now`, injected), the issue files and the journal, so
that tests move the clock instead of sleeping; `run_due` carries the due issues out, each
through the ordinary send path and its journal, which makes any number of schedulers firing
at once send each issue once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from newsletter.config import DAYS, Config
from newsletter.errors import NewsletterError, SendError
from newsletter.send.plan import SendOptions, plan_send
from newsletter.send.sender import SendReport, run_send
from newsletter.store import Store, journal
from newsletter.workspace import Workspace, parse_issue_name

LOOK_BACK = dt.timedelta(days=1)  # a missed issue is reported for a day, then forgotten
SENDGRID_AHEAD_MAX = dt.timedelta(hours=72)  # SendGrid's limit on send_at

Status = Literal[
    "no issue", "invalid", "draft", "ready", "due", "sending", "sent", "scheduled", "missed"
]


@dataclass(frozen=True)
class Slot:
    """One scheduled send: an issue (or the day one is expected) and its window."""

    newsletter: str
    date: dt.date
    at: dt.datetime  # in the newsletter's timezone
    closes: dt.datetime
    path: Path
    file_status: Literal["no issue", "invalid", "draft", "ready"]
    started: bool = False  # the journal has its recipients
    finished: bool = False  # nothing left to send
    scheduled_for: dt.datetime | None = None  # handed to SendGrid with send_at

    @property
    def key(self) -> str:
        return f"{self.newsletter}/{self.date.isoformat()}"

    def status(self, now: dt.datetime) -> Status:
        """What this slot is at `now`: the one rule for `send --due` and `schedule`."""
        if self.scheduled_for is not None and self.finished and now < self.scheduled_for:
            return "scheduled"
        if self.finished:
            return "sent"
        if now >= self.closes:
            return "missed"
        if self.started:
            return "sending"  # interrupted or running: the next --due resumes it
        if now < self.at:
            return self.file_status
        return "due" if self.file_status == "ready" else self.file_status


def timezone_of(config: Config, newsletter: str) -> ZoneInfo:
    return ZoneInfo(config.newsletters[newsletter].timezone or config.publication.timezone)


def scheduled_time(
    config: Config, newsletter: str, date: dt.date, send_at: dt.datetime | None = None
) -> dt.datetime | None:
    """When the issue of `newsletter` for `date` goes out (None: it is not scheduled)."""
    tz = timezone_of(config, newsletter)
    if send_at is not None:
        return send_at if send_at.tzinfo else send_at.replace(tzinfo=tz)
    nl = config.newsletters[newsletter]
    if nl.send_time is None or DAYS[date.weekday()] not in nl.send_days:
        return None
    return dt.datetime.combine(date, dt.time.fromisoformat(nl.send_time), tzinfo=tz)


def slots(workspace: Workspace, store: Store | None, now: dt.datetime, days: int = 0) -> list[Slot]:
    """Every scheduled send from a day before `now` to `days` after it, expected or
    written, with what the issue files and the journal say of each; by time."""
    from newsletter.build.catalog import Catalog

    config = workspace.config
    catalog = Catalog(workspace)
    first = (now - LOOK_BACK - dt.timedelta(days=1)).date()
    last = (now + dt.timedelta(days=days + 1)).date()
    found: dict[tuple[str, dt.date], Slot] = {}

    def add(newsletter: str, date: dt.date, path: Path, send_at: dt.datetime | None) -> None:
        at = scheduled_time(config, newsletter, date, send_at)
        if at is None:
            return
        hours = config.newsletters[newsletter].send_window_hours
        status: Literal["no issue", "invalid", "draft", "ready"] = "no issue"
        if path.exists():
            issue, _ = catalog.load(path)
            status = "invalid" if issue is None else issue.status
        found[(newsletter, date)] = Slot(
            newsletter, date, at, at + dt.timedelta(hours=hours), path, status
        )

    files = workspace.issue_files() if workspace.issues_dir.is_dir() else []
    for path in files:
        named = parse_issue_name(path)
        if named is None or named[0] not in config.newsletters:
            continue
        if not first - dt.timedelta(days=7) <= named[1] <= last + dt.timedelta(days=7):
            continue  # send_at may move an issue by days, not by weeks
        issue, _ = catalog.load(path)
        add(named[0], named[1], path, issue.send_at if issue else None)
    for newsletter in config.newsletters:
        day = first
        while day <= last:
            if (newsletter, day) not in found:
                path = workspace.issue_path(newsletter, day)
                if not path.exists():
                    add(newsletter, day, path, None)
            day += dt.timedelta(days=1)
    until = now + dt.timedelta(days=days)
    window = [s for s in found.values() if now - LOOK_BACK <= s.closes and s.at <= until]
    if store is not None and window:
        with store.begin() as conn:
            for n, slot in enumerate(window):
                send = journal.started(conn, slot.key)
                if send is not None:
                    window[n] = Slot(
                        slot.newsletter,
                        slot.date,
                        slot.at,
                        slot.closes,
                        slot.path,
                        slot.file_status,
                        started=True,
                        finished=send["finished_at"] is not None,
                        scheduled_for=send.get("scheduled_for"),
                    )
    return sorted(window, key=lambda s: (s.at, s.newsletter))


@dataclass
class DueReport:
    now: dt.datetime
    sent: list[tuple[Slot, SendReport]] = field(default_factory=list)
    scheduled: list[tuple[Slot, SendReport]] = field(default_factory=list)  # SendGrid send_at
    already: list[Slot] = field(default_factory=list)  # sent by another run meanwhile
    drafts: list[Slot] = field(default_factory=list)
    missed: list[Slot] = field(default_factory=list)
    failed: list[tuple[Slot, str]] = field(default_factory=list)  # could not start

    @property
    def nothing(self) -> bool:
        return not (self.sent or self.scheduled or self.drafts or self.missed or self.failed)


def run_due(
    workspace: Workspace,
    store: Store,
    options: SendOptions,
    now: dt.datetime,
    on_start: Callable[[Slot], None] | None = None,
) -> DueReport:
    """Send every due ready issue once; with SendGrid and `schedule_ahead`, hand over the
    ones whose time is that close with send_at. Report drafts that are due and missed
    issues. One issue that cannot be sent does not stop the others."""
    report = DueReport(now)
    ahead = dt.timedelta(hours=workspace.config.sendgrid.schedule_ahead)
    if options.backend != "sendgrid":
        ahead = dt.timedelta(0)
    for slot in slots(workspace, store, now, days=int(ahead.total_seconds() // 86400) + 1):
        status = slot.status(now)
        early = (
            status == "ready"
            and ahead
            and slot.at - now <= min(ahead, SENDGRID_AHEAD_MAX)
            and not slot.started
        )
        if status == "missed":
            if slot.started or slot.file_status != "no issue":
                report.missed.append(slot)  # an interrupted one too: its window closed since
        elif status in ("draft", "invalid", "no issue") and now >= slot.at:
            report.drafts.append(slot)
        elif status in ("due", "sending") or early:
            _send(workspace, store, options, now, slot, report, at=slot.at if early else None)
            if on_start:
                on_start(slot)
    return report


def _send(
    workspace: Workspace,
    store: Store,
    options: SendOptions,
    now: dt.datetime,
    slot: Slot,
    report: DueReport,
    at: dt.datetime | None,
) -> None:
    mine = SendOptions(
        backend=options.backend,
        late=True,  # the schedule's window, checked above, is the one that counts here
        at=at,
        resend_unknown=options.resend_unknown,
        retry_failed=options.retry_failed,
        now=now,
    )
    try:
        plan = plan_send(workspace, store, slot.key, mine)
        if plan.resuming and plan.recipients == 0:
            report.already.append(slot)
            return
        sent = run_send(plan, store)
    except SendError as exc:
        report.failed.append((slot, str(exc)))
        return
    except NewsletterError as exc:
        report.failed.append((slot, str(exc)))
        return
    if at is not None:
        with store.begin() as conn:
            journal.mark_scheduled(conn, slot.key, at)
        report.scheduled.append((slot, sent))
    else:
        report.sent.append((slot, sent))
