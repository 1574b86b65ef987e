"""`newsletter send`: an issue to its subscribers, exactly once, through a backend.

`run_send` takes a checked `SendPlan` (`send.plan`), fixes the recipients in the journal
(once per issue) and works through them: claim a batch, build its messages, mark them in
flight, hand them to the backend, record each outcome. Running it again resumes: nobody
recorded as sent gets the issue twice; messages whose outcome is unknown are listed and sent
again only on request (--resend-unknown), and so are failed ones (--retry-failed): until
then every run counts them, with their commonest reasons.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from newsletter.audience import delivery
from newsletter.audience.tokens import Signer
from newsletter.config import Environment
from newsletter.errors import BackendRefused
from newsletter.model import Recipient
from newsletter.send.backends import get_backend
from newsletter.send.backends.base import Backend, Outcome
from newsletter.send.message import Message, MessageFactory
from newsletter.send.plan import SendOptions, SendPlan
from newsletter.store import Connection, Store, journal

LEASE = dt.timedelta(minutes=10)
CLAIM_AT_LEAST = 25  # rows a worker claims at once, however small its backend's batches
Progress = Callable[[int, int], None]


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
    failed_total: int = 0  # failed and not yet sent after this run, earlier runs' included
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)  # the commonest, counted

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
            "failed_total": self.failed_total,
            "failure_reasons": [{"error": e, "count": n} for e, n in self.failure_reasons],
        }


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
    outbox = workspace.outbox_dir / content.newsletter / content.date.isoformat()
    if options.test:
        outbox = outbox / "test"
    send_at = int(options.at.timestamp()) if options.at is not None else None
    backend = get_backend(options.backend, workspace.config, outbox, send_at=send_at)
    signer = Signer(plan.secret)
    factory = MessageFactory(
        workspace.config,
        content,
        signer,
        plan.secret,
        now,
        test=bool(options.test),
        mime=backend.mime,
    )
    backend.use(factory)  # API backends send the shared bodies and per-recipient values
    report = SendReport(content.key, backend.name)
    started = time.perf_counter()
    try:
        if options.test:
            _send_tests(plan, factory, backend, report)
            report.failed_total = report.failed
            counted = Counter(error for _, error in report.failures)
            report.failure_reasons = counted.most_common(3)
        else:
            _ListSend(plan, store, factory, backend, report, on_progress).run()
    finally:
        backend.close()
        report.seconds = time.perf_counter() - started
    return report


def _build(factory: MessageFactory, c: journal.Claimed) -> Message | str:
    """One recipient's message, or why it cannot be built: nothing about one recipient
    (a name, an address the mail cannot carry) may stop the send for the others, so any
    error here is that recipient's failure, never the send's."""
    try:
        return factory.build(Recipient(c.subscriber_id, c.email, c.name, c.tier))
    except Exception as exc:  # the error is recorded as this recipient's outcome
        return f"the message cannot be built: {exc}"


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
            report.failures.append((message.to, Environment().mask(outcome.error)))
        else:
            report.unknown += 1
            report.unknowns.append(message.to)


Handed = tuple[list[journal.Claimed], list[Outcome]]  # a batch and what became of it


class _ListSend:
    """This process's part of sending an issue to its list. Its workers (one per batch the
    backend takes at once) share the budget of messages left to send, the report and the
    progress count, all under one lock; the journal is what they share with other processes."""

    def __init__(
        self,
        plan: SendPlan,
        store: Store,
        factory: MessageFactory,
        backend: Backend,
        report: SendReport,
        on_progress: Progress | None,
    ):
        self.options: SendOptions = plan.options
        self.newsletter = plan.content.newsletter
        self.issue = plan.content.key
        self.store = store
        self.factory = factory
        self.backend = backend
        self.report = report
        self.on_progress = on_progress
        self.worker = _worker_id()
        self.lock = threading.Lock()
        self.total = 0  # pending when this process joined the send
        self.budget = 0  # messages this process may still claim (--limit)
        self.done = 0  # handed over and recorded, for the progress bar
        self.mask = Environment().mask
        rule = plan.workspace.config.bounces
        self.soft = delivery.SoftRule(rule.soft_limit, rule.soft_days)

    def now(self) -> dt.datetime:
        return self.options.now or dt.datetime.now(dt.UTC)

    def run(self) -> None:
        self.join()
        if self.backend.parallel > 1:
            with ThreadPoolExecutor(max_workers=self.backend.parallel) as pool:
                for future in [pool.submit(self.work) for _ in range(self.backend.parallel)]:
                    future.result()
        else:
            self.work()
        self.finish()

    def join(self) -> None:
        """Fix the recipients (unless another process did), take back what dead workers held,
        and count what is left."""
        with self.store.begin() as conn:
            if not journal.started(conn, self.issue):
                try:
                    journal.start(conn, self.issue, self.newsletter, self.backend.name, self.now())
                except journal.AlreadyStarting:
                    pass  # another process fixed the recipients first: this one joins it
        with self.store.begin() as conn:
            journal.recover(conn, self.issue, _is_dead, self.now(), settle=self.backend.settle)
            if self.options.resend_unknown:
                journal.resend_unknown(conn, self.issue, self.now())
            if self.options.retry_failed:
                journal.retry_failed(conn, self.issue, self.now())
            states = journal.counts(conn, self.issue)
        self.report.recipients = sum(states.values()) - states["skipped"]
        self.report.already_sent = states["sent"]
        self.total = states["pending"]
        self.budget = self.options.limit if self.options.limit is not None else self.total

    def take(self, n: int) -> int:
        """Up to n messages from the budget."""
        with self.lock:
            granted = min(n, self.budget)
            self.budget -= granted
            return granted

    def settle(
        self, conn: Connection, live: list[journal.Claimed], outcomes: list[Outcome]
    ) -> None:
        """Record what became of handed-over messages, and count them; an error is recorded
        with every secret masked (a provider may echo the key)."""
        outcomes = [replace(o, error=self.mask(o.error)) if o.error else o for o in outcomes]
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
            journal.mark(conn, rows, state, self.now(), provider_id=common, per_row=details)
        refused = [
            delivery.smtp_refusal(
                self.issue, c.subscriber_id, c.email, r.code, r.reply, r.permanent, self.now()
            )
            for c, o in zip(live, outcomes, strict=True)
            if (r := o.refusal) is not None
        ]
        if refused:  # a bounce known at once: the same rules as the provider's events (#14)
            delivery.apply(conn, refused, self.now(), self.soft)
        report = self.report
        with self.lock:
            report.sent += len(by_state["sent"])
            report.failed += len(by_state["failed"])
            report.unknown += len(by_state["unknown"])
            for c, o in zip(live, outcomes, strict=True):
                if o.state == "failed":
                    report.failures.append((c.email, o.error))
                elif o.state == "unknown":
                    report.unknowns.append(c.email)
            self.done += len(live)
            if self.on_progress:
                self.on_progress(self.done, self.total)

    def claim(self, want: int, previous: Handed | None) -> list[journal.Claimed]:
        """Record the previous batch's outcomes and claim rows, in one transaction; those
        unsubscribed or suppressed since the send began are skipped."""
        with self.store.begin() as conn:
            return self._claim(conn, want, previous, mark_claimed=True)

    def _claim(
        self, conn: Connection, want: int, previous: Handed | None, mark_claimed: bool
    ) -> list[journal.Claimed]:
        if previous:
            self.settle(conn, *previous)
        claimed = journal.claim(
            conn,
            self.issue,
            self.newsletter,
            self.worker,
            want,
            self.now(),
            LEASE,
            mark_claimed=mark_claimed,
        )
        gone = [c.journal_id for c in claimed if not c.still_subscribed]
        journal.mark(
            conn,
            gone,
            "skipped",
            self.now(),
            error="unsubscribed or suppressed before the message went out",
        )
        with self.lock:
            self.report.skipped += len(gone)
        return claimed

    def work(self) -> None:
        """Claim rows, then hand them over a batch at a time. When a claim is one batch
        (SendGrid's 1,000), one transaction records the previous batch's outcomes, takes
        the rows and marks their messages in flight: one transaction a batch. Otherwise each
        transaction records the previous batch's outcomes and either claims the next rows
        or marks the next batch in flight: two a batch when a claim is one batch."""
        backend = self.backend
        claim_size = max(backend.batch_size, CLAIM_AT_LEAST)
        previous: Handed | None = None
        try:
            while True:
                want = self.take(claim_size)
                if want <= 0:
                    return
                handed, previous = previous, None
                if claim_size == backend.batch_size:
                    if not (taken := self.take_in_flight(want, handed)):
                        return
                    previous = self.post(*taken, rest=[])
                    continue
                claimed = self.claim(want, handed)
                if not claimed:
                    return
                live = [c for c in claimed if c.still_subscribed]
                for start in range(0, len(live), backend.batch_size):
                    rows = live[start : start + backend.batch_size]
                    handed, previous = previous, None  # settled by hand_over, whatever happens
                    previous = self.hand_over(rows, handed, live[start + len(rows) :])
        finally:
            if previous:
                with self.store.begin() as conn:
                    self.settle(conn, *previous)

    def take_in_flight(
        self, want: int, previous: Handed | None
    ) -> tuple[list[journal.Claimed], list[Message]] | None:
        """One batch from pending straight to in flight, its messages built inside the
        transaction: if this process dies before the commit, the rows are still pending
        and go out later; after it, they are in flight, as after `hand_over`'s mark. None
        when nothing is left to claim."""
        with self.store.begin() as conn:
            claimed = self._claim(conn, want, previous, mark_claimed=False)
            if not claimed:
                return None
            batch, messages = self._built(conn, [c for c in claimed if c.still_subscribed])
        return batch, messages

    def _built(
        self, conn: Connection, rows: list[journal.Claimed]
    ) -> tuple[list[journal.Claimed], list[Message]]:
        """Build a batch's messages and mark them in flight; a message that cannot be built
        is that recipient's failure, recorded here."""
        built = [(c, _build(self.factory, c)) for c in rows]
        batch = [c for c, m in built if isinstance(m, Message)]
        messages = [m for _, m in built if isinstance(m, Message)]
        broken = [(c, Outcome("failed", error=m)) for c, m in built if isinstance(m, str)]
        if broken:
            self.settle(conn, [c for c, _ in broken], [o for _, o in broken])
        journal.mark(
            conn,
            [c.journal_id for c in batch],
            "inflight",
            self.now(),
            worker=self.worker,
            lease_until=self.now() + LEASE,
        )
        return batch, messages

    def hand_over(
        self, rows: list[journal.Claimed], previous: Handed | None, rest: list[journal.Claimed]
    ) -> Handed | None:
        """Build a batch's messages, mark them in flight (recording the previous batch in the
        same transaction) and hand them to the backend; `rest` are this worker's claimed rows
        still to go, given back if the provider refuses the hand-over."""
        with self.store.begin() as conn:
            if previous:
                self.settle(conn, *previous)
            batch, messages = self._built(conn, rows)
        return self.post(batch, messages, rest)

    def post(
        self, batch: list[journal.Claimed], messages: list[Message], rest: list[journal.Claimed]
    ) -> Handed | None:
        """Hand a batch marked in flight to the backend; if the provider refuses the request
        itself, nothing went out: the batch and `rest` go back to pending."""
        if not messages:
            return None
        try:
            return batch, self.backend.send(messages)
        except BackendRefused:
            with self.store.begin() as conn:
                ids = [c.journal_id for c in batch]
                journal.mark(conn, ids, "pending", self.now(), worker="")
                journal.mark(conn, [c.journal_id for c in rest], "pending", self.now(), worker="")
            raise

    def finish(self) -> None:
        """Close the send if nothing is left, and report every unknown outcome and every
        failure still outstanding, earlier runs' included."""
        with self.store.begin() as conn:
            journal.finish(conn, self.issue, self.now())
            states = journal.counts(conn, self.issue)
            earlier_unknown = journal.rows(conn, self.issue, ["unknown"])
            self.report.failure_reasons = journal.failure_reasons(conn, self.issue)
        self.report.failed_total = states["failed"]
        self.report.unknown = states["unknown"]
        self.report.unknowns = [
            r["email"] or f"subscriber {r['subscriber_id']}" for r in earlier_unknown
        ]
