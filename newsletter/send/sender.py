"""`newsletter send`: an issue to its subscribers, exactly once, through a backend.

`plan_send` checks everything that can stop a send (the build, the issue's status, its send
window, the secret, the backend) and counts the recipients, so that the CLI can ask for
confirmation; `run_send` then fixes the recipients in the journal (once per issue) and
works through them: claim a batch, build its messages, mark them in flight, hand them to the
backend, record each outcome. Running it again resumes: nobody recorded as sent gets the
issue twice; messages whose outcome is unknown are listed and sent again only on request.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from newsletter.audience.tokens import Signer, load_secret
from newsletter.errors import NewsletterError
from newsletter.model import Recipient, Tier
from newsletter.send.backends import get_backend
from newsletter.send.backends.base import Backend, Outcome
from newsletter.send.message import IssueContent, Message, MessageFactory
from newsletter.store import Store, journal
from newsletter.workspace import Workspace, parse_issue_name

LEASE = dt.timedelta(minutes=10)
CLAIM_AT_LEAST = 25  # rows a worker claims at once, however small its backend's batches
Progress = Callable[[int, int], None]


class SendError(NewsletterError):
    """The send cannot start (or go on)."""


@dataclass
class SendOptions:
    backend: str = "outbox"
    test: list[str] = field(default_factory=list)
    test_tier: Tier = Tier.PREMIUM
    limit: int | None = None
    late: bool = False
    at: dt.datetime | None = None
    resend_unknown: bool = False
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


@dataclass
class SendReport:
    issue: str
    backend: str
    recipients: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # unsubscribed or suppressed while the send ran
    already_sent: int = 0
    unknown: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "issue": self.issue,
            "backend": self.backend,
            "recipients": self.recipients,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "already_sent": self.already_sent,
            "unknown": self.unknown,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "failures": [{"email": e, "error": r} for e, r in self.failures],
            "unknown_recipients": self.unknowns,
        }


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
    resuming, already, unknown = False, 0, 0
    if options.test:
        count = len(options.test)
        by_tier = {options.test_tier.value: count}
    else:
        with store.begin() as conn:
            existing = journal.started(conn, content.key)
            if existing:
                resuming = True
                states = journal.counts(conn, content.key)
                already, unknown = states["sent"], states["unknown"]
                count = states["pending"] + states["claimed"] + states["inflight"]
                if options.resend_unknown:
                    count += unknown
            else:
                from newsletter.store import subscribers as q

                count = 0
                for r in q.recipients(conn, content.newsletter):
                    by_tier[r.tier] = by_tier.get(r.tier, 0) + 1
                    count += 1
    return SendPlan(
        workspace, content.key, content, options, count, by_tier, resuming, already, unknown, secret
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


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _is_dead(worker: str) -> bool:
    """A worker on this machine whose process is gone; others are judged by their lease."""
    try:
        host, pid, _ = worker.split(":")
    except ValueError:
        return True
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def run_send(plan: SendPlan, store: Store, on_progress: Progress | None = None) -> SendReport:
    options = plan.options
    workspace = plan.workspace
    content = plan.content
    now = options.now or dt.datetime.now(dt.UTC)
    outbox = workspace.root / "outbox" / content.newsletter / content.date.isoformat()
    if options.test:
        outbox = outbox / "test"
    send_at = int(options.at.timestamp()) if options.at is not None else None
    backend = get_backend(options.backend, workspace.config, outbox, send_at=send_at)
    signer = Signer(plan.secret)
    factory = MessageFactory(
        workspace.config, content, signer, plan.secret, now, test=bool(options.test)
    )
    use = getattr(backend, "use", None)
    if use is not None:
        use(factory)  # API backends send the shared bodies and per-recipient values
    report = SendReport(content.key, backend.name)
    started = time.perf_counter()
    try:
        if options.test:
            _send_tests(plan, factory, backend, report)
        else:
            _send_list(plan, store, factory, backend, report, on_progress)
    finally:
        backend.close()
        report.seconds = time.perf_counter() - started
    return report


def _send_tests(
    plan: SendPlan, factory: MessageFactory, backend: Backend, report: SendReport
) -> None:
    messages = [
        factory.build(Recipient(-(n + 1), email, "", plan.options.test_tier.value))
        for n, email in enumerate(plan.options.test)
    ]
    report.recipients = len(messages)
    for message, outcome in zip(messages, backend.send(messages), strict=True):
        if outcome.state == "sent":
            report.sent += 1
        elif outcome.state == "failed":
            report.failed += 1
            report.failures.append((message.to, outcome.error))
        else:
            report.unknown += 1
            report.unknowns.append(message.to)


def _send_list(
    plan: SendPlan,
    store: Store,
    factory: MessageFactory,
    backend: Backend,
    report: SendReport,
    on_progress: Progress | None,
) -> None:
    content, options = plan.content, plan.options
    issue = content.key
    worker = _worker_id()
    with store.begin() as conn:
        if not journal.started(conn, issue):
            try:
                journal.start(conn, issue, content.newsletter, backend.name, _now(options))
            except journal.AlreadyStarting:
                pass  # another process fixed the recipients first: this one joins it
    with store.begin() as conn:
        journal.recover(conn, issue, _is_dead, _now(options), settle=backend.settle)
        if options.resend_unknown:
            journal.resend_unknown(conn, issue, _now(options))
        states = journal.counts(conn, issue)
    report.recipients = sum(states.values()) - states["skipped"]
    report.already_sent = states["sent"]
    total = states["pending"]
    budget = [options.limit if options.limit is not None else total]
    lock = threading.Lock()
    done = [0]

    def take(n: int) -> int:
        with lock:
            granted = min(n, budget[0])
            budget[0] -= granted
            return granted

    def settle(conn: Any, live: list[journal.Claimed], outcomes: list[Outcome]) -> None:
        """Record what became of handed-over messages, and count them."""
        by_state: dict[str, list[int]] = {"sent": [], "failed": [], "unknown": []}
        for c, o in zip(live, outcomes, strict=True):
            by_state[o.state].append(c.journal_id)
        shared = {o.provider_id for o in outcomes if o.state == "sent"}
        details = {
            c.journal_id: {"error": o.error}
            if o.state != "sent"
            else {"provider_id": o.provider_id}
            for c, o in zip(live, outcomes, strict=True)
            if o.state != "sent" or len(shared) > 1
        }
        for state, rows in by_state.items():
            common = shared.pop() if state == "sent" and len(shared) == 1 else ""
            journal.mark(conn, rows, state, _now(options), provider_id=common, per_row=details)
        with lock:
            report.sent += len(by_state["sent"])
            report.failed += len(by_state["failed"])
            report.unknown += len(by_state["unknown"])
            for c, o in zip(live, outcomes, strict=True):
                if o.state == "failed":
                    report.failures.append((c.email, o.error))
                elif o.state == "unknown":
                    report.unknowns.append(c.email)
            done[0] += len(live)
            if on_progress:
                on_progress(done[0], total)

    def work() -> None:
        """Claim rows, then hand them over a batch at a time. Each transaction records the
        previous batch's outcomes and marks the next batch in flight, before it goes."""
        claim_size = max(backend.batch_size, CLAIM_AT_LEAST)
        while True:
            want = take(claim_size)
            if want <= 0:
                return
            with store.begin() as conn:
                claimed = journal.claim(
                    conn, issue, content.newsletter, worker, want, _now(options), LEASE
                )
                gone = [c.journal_id for c in claimed if not c.still_subscribed]
                journal.mark(
                    conn,
                    gone,
                    "skipped",
                    _now(options),
                    error="unsubscribed or suppressed before the message went out",
                )
            with lock:
                report.skipped += len(gone)
            if not claimed:
                return
            live = [c for c in claimed if c.still_subscribed]
            previous: tuple[list[journal.Claimed], list[Outcome]] | None = None
            for start in range(0, len(live), backend.batch_size):
                batch = live[start : start + backend.batch_size]
                messages = [
                    factory.build(Recipient(c.subscriber_id, c.email, c.name, c.tier))
                    for c in batch
                ]
                ids = [c.journal_id for c in batch]
                with store.begin() as conn:
                    if previous:
                        settle(conn, *previous)
                    journal.mark(
                        conn, ids, "inflight", _now(options), lease_until=_now(options) + LEASE
                    )
                try:
                    previous = (batch, backend.send(messages))
                except NewsletterError:  # the provider refused the request itself: nothing went out
                    with store.begin() as conn:
                        journal.mark(conn, ids, "pending", _now(options), worker="")
                        rest = [c.journal_id for c in live[start + len(batch) :]]
                        journal.mark(conn, rest, "pending", _now(options), worker="")
                    raise
            if previous:
                with store.begin() as conn:
                    settle(conn, *previous)

    if backend.parallel > 1:
        with ThreadPoolExecutor(max_workers=backend.parallel) as pool:
            for future in [pool.submit(work) for _ in range(backend.parallel)]:
                future.result()
    else:
        work()
    with store.begin() as conn:
        journal.finish(conn, issue, _now(options))
        states = journal.counts(conn, issue)
        earlier_unknown = journal.rows(conn, issue, ["unknown"])
    report.unknown = states["unknown"]
    report.unknowns = [r["email"] or f"subscriber {r['subscriber_id']}" for r in earlier_unknown]


def _now(options: SendOptions) -> dt.datetime:
    return options.now or dt.datetime.now(dt.UTC)
