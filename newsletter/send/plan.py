"""Everything that can stop a send, checked before it starts.

`plan_send` builds the issue if its build is missing or stale, checks its status, its send
window, the schedule, the secret, and counts the recipients (or what is left of them on a
resume), so that the CLI can ask for confirmation before anything goes out; `sample` renders
one message for --dry-run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from newsletter.audience.tokens import Signer, load_secret
from newsletter.errors import SendError
from newsletter.model import Recipient, Tier
from newsletter.send.message import IssueContent, Message, MessageFactory
from newsletter.store import Store, journal
from newsletter.workspace import Workspace, parse_issue_name


@dataclass
class SendOptions:
    backend: str = "outbox"
    test: list[str] = field(default_factory=list)
    test_tier: Tier = Tier.PREMIUM
    limit: int | None = None
    late: bool = False
    at: dt.datetime | None = None
    resend_unknown: bool = False
    retry_failed: bool = False
    dry_run: bool = False
    now: dt.datetime | None = None


@dataclass
class SendPlan:
    workspace: Workspace
    issue_key: str
    content: IssueContent
    options: SendOptions
    recipients: int  # to send to now (remaining on a resume)
    by_tier: dict[str, int]
    resuming: bool
    already_sent: int
    unknown: int
    secret: str = field(repr=False)
    failed: int = 0  # recipients an earlier run failed to reach
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)  # the commonest, counted


def issue_key(workspace: Workspace, ref: str) -> str:
    """`<newsletter>/<date>` for an issue file or such a reference (the file need not exist)."""
    path = workspace.resolve_issue(ref)
    try:
        dt.date.fromisoformat(path.stem)
    except ValueError:
        raise SendError(f"{ref}: an issue file is named by its date, like 2025-05-14.md") from None
    return f"{path.resolve().parent.name}/{path.stem}"


def _content(workspace: Workspace, path: Path) -> tuple[IssueContent, str]:
    """Build the issue if its build is missing or stale; read what the build wrote."""
    from newsletter.build.output import Manifest
    from newsletter.build.pipeline import build

    named = parse_issue_name(path)
    if named is None or not path.is_file():
        raise SendError(f"no issue file {workspace.display(path)}")
    report = build(workspace, [path])
    if not report.ok:
        first = report.problems.errors[0].format()
        raise SendError(
            f"the issue does not build ({len(report.problems.errors)} error(s)); first: {first}"
        )
    folder = workspace.build_dir / named[0] / named[1].isoformat()
    manifest = Manifest.read(folder)
    assert manifest is not None
    html = {t: (folder / f"{t.value}.html").read_text(encoding="utf-8") for t in Tier}
    text = {t: (folder / f"{t.value}.txt").read_text(encoding="utf-8") for t in Tier}
    return IssueContent(named[0], named[1], manifest.subject, html, text), manifest.status


def send_window_end(workspace: Workspace, content: IssueContent) -> dt.datetime:
    nl = workspace.config.newsletters[content.newsletter]
    tz = ZoneInfo(workspace.config.publication.timezone)
    last_day = content.date + dt.timedelta(days=nl.send_window_days - 1)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)


def plan_send(workspace: Workspace, store: Store, ref: str, options: SendOptions) -> SendPlan:
    now = options.now or dt.datetime.now(dt.UTC)
    path = workspace.resolve_issue(ref)
    content, status = _content(workspace, path)
    if options.at is not None:
        if options.backend != "sendgrid":
            raise SendError("scheduled sending (--at) needs the sendgrid backend")
        if options.at.tzinfo is None:
            tz = ZoneInfo(workspace.config.publication.timezone)
            options.at = options.at.replace(tzinfo=tz)
        if not now < options.at <= now + dt.timedelta(hours=72):
            raise SendError(
                f"--at {options.at:%Y-%m-%d %H:%M %Z} is not within the next 72 hours "
                "(SendGrid schedules at most 72 hours ahead)"
            )
    secret = load_secret(workspace.root)
    if options.backend in ("outbox", "smtp"):
        from newsletter.send import dkim

        dkim.load(workspace.config)  # a missing or bad DKIM key stops the send before it starts
    if not options.test and not options.dry_run:
        if status != "ready":
            raise SendError(
                f"{workspace.display(path)} is a draft: set 'status: ready' to send it "
                "(--test works on drafts)"
            )
        end = send_window_end(workspace, content)
        if now >= end and not options.late:
            raise SendError(
                f"the send window of {content.key} closed at {end:%Y-%m-%d %H:%M %Z}: "
                "a stale issue is not sent (use --late to send it anyway)"
            )
    by_tier: dict[str, int] = {}
    resuming, already, unknown, failed = False, 0, 0, 0
    reasons: list[tuple[str, int]] = []
    if options.test:
        count = len(options.test)
        by_tier = {options.test_tier.value: count}
    else:
        with store.begin() as conn:
            existing = journal.started(conn, content.key)
            if existing:
                resuming = True
                states = journal.counts(conn, content.key)
                already, unknown, failed = states["sent"], states["unknown"], states["failed"]
                reasons = journal.failure_reasons(conn, content.key)
                count = states["pending"] + states["claimed"] + states["inflight"]
                if options.resend_unknown:
                    count += unknown
                if options.retry_failed:
                    count += failed
            else:
                from newsletter.store import people as q

                count = 0
                for r in q.recipients(conn, content.newsletter):
                    by_tier[r.tier] = by_tier.get(r.tier, 0) + 1
                    count += 1
    return SendPlan(
        workspace,
        content.key,
        content,
        options,
        count,
        by_tier,
        resuming,
        already,
        unknown,
        secret,
        failed=failed,
        failure_reasons=reasons,
    )


def sample(plan: SendPlan) -> Message:
    """One rendered message, for --dry-run: to a made-up reader of the first tier."""
    signer = Signer(plan.secret)
    factory = MessageFactory(
        plan.workspace.config,
        plan.content,
        signer,
        plan.secret,
        plan.options.now or dt.datetime.now(dt.UTC),
    )
    tier = next(iter(plan.by_tier), "free")
    return factory.build(Recipient(0, "reader@example.com", "Sample Reader", tier))
