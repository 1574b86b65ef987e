"""The send journal: who an issue goes to, and what became of each message.

A send fixes its recipients once (`start`, one transaction). Workers then `claim` pending
rows (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's write lock serialises claims), mark
them `inflight` *before* handing them to a backend and `sent` or `failed` after. A row left
`claimed` by a dead worker was never handed over and goes back to `pending`; a row left
`inflight` has an unknown outcome and is not sent again unless asked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from newsletter.store import people
from newsletter.store.schema import (
    UtcDateTime,
    send_journal,
    sends,
    subscribers,
    subscriptions,
)

STATES = ("pending", "claimed", "inflight", "sent", "failed", "skipped", "unknown")


@dataclass(frozen=True)
class Claimed:
    journal_id: int
    subscriber_id: int
    email: str
    name: str
    tier: str
    still_subscribed: bool


class AlreadyStarting(Exception):
    """Another process fixed the recipients at the same moment: start again to resume."""


def started(conn: Connection, issue: str) -> dict[str, Any] | None:
    row = conn.execute(select(sends).where(sends.c.issue == issue)).first()
    return dict(row._mapping) if row else None


def start(conn: Connection, issue: str, newsletter: str, backend: str, now: dt.datetime) -> int:
    """Fix the recipients of a new send, once: every subscriber `people.receiving` chooses."""
    try:
        with conn.begin_nested():  # a savepoint: on PostgreSQL a failed INSERT ends the transaction
            conn.execute(
                insert(sends).values(
                    issue=issue,
                    newsletter=newsletter,
                    backend=backend,
                    recipients=0,
                    started_at=now,
                )
            )
    except IntegrityError:
        raise AlreadyStarting(issue) from None
    chosen = people.receiving(
        newsletter,
        literal(issue),
        subscribers.c.id,
        literal("pending"),
        literal(now, UtcDateTime),
        subscribers.c.tier,
    )
    # the tier is fixed here too: a paywall's change during the send is for the next one
    conn.execute(
        insert(send_journal).from_select(
            ["issue", "subscriber_id", "state", "updated_at", "tier"], chosen
        )
    )
    count = conn.execute(
        select(func.count()).select_from(send_journal).where(send_journal.c.issue == issue)
    ).scalar_one()
    conn.execute(update(sends).where(sends.c.issue == issue).values(recipients=count))
    return int(count)


def recover(
    conn: Connection,
    issue: str,
    is_dead: Callable[[str], bool],
    now: dt.datetime,
    settle: Callable[[list[int]], set[int] | None] | None = None,
) -> tuple[int, int, int]:
    """Rows abandoned by dead workers: claimed → pending; inflight → sent if `settle` proves
    it (the outbox: the file exists), else → pending if settle proves it was not, else unknown.

    Returns (released, settled as sent, unknown)."""
    rows = conn.execute(
        select(
            send_journal.c.id,
            send_journal.c.subscriber_id,
            send_journal.c.state,
            send_journal.c.worker,
            send_journal.c.lease_until,
        ).where(send_journal.c.issue == issue, send_journal.c.state.in_(("claimed", "inflight")))
    ).all()
    abandoned = [
        r for r in rows if is_dead(r.worker) or (r.lease_until is not None and r.lease_until < now)
    ]
    claimed = [r.id for r in abandoned if r.state == "claimed"]
    inflight = [r for r in abandoned if r.state == "inflight"]
    delivered: set[int] = set()
    pending = list(claimed)
    unknown: list[int] = []
    proven = (
        settle([r.subscriber_id for r in inflight]) if settle is not None and inflight else None
    )
    if proven is None:
        unknown = [r.id for r in inflight]
    else:
        delivered = {r.id for r in inflight if r.subscriber_id in proven}
        pending += [r.id for r in inflight if r.subscriber_id not in proven]
    mark(conn, pending, "pending", now, worker="")
    mark(conn, sorted(delivered), "sent", now)
    mark(
        conn,
        unknown,
        "unknown",
        now,
        error="the process stopped after handing it over: outcome unknown",
    )
    return len(pending), len(delivered), len(unknown)


def claim(
    conn: Connection,
    issue: str,
    newsletter: str,
    worker: str,
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
    *,
    mark_claimed: bool = True,
) -> list[Claimed]:
    """Up to `limit` pending rows for this worker, with what is needed to send to them.
    With `mark_claimed=False` they stay pending, for a caller that marks them in flight (or
    failed, or skipped) in this same transaction: the write lock (SQLite) or the row locks
    (PostgreSQL, FOR UPDATE) keep every other worker off them until it commits."""
    query = (
        select(send_journal.c.id)
        .where(send_journal.c.issue == issue, send_journal.c.state == "pending")
        .order_by(send_journal.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = [i for (i,) in conn.execute(query)]
    if not ids:
        return []
    if mark_claimed:
        conn.execute(
            update(send_journal)
            .where(_among(conn, send_journal.c.id, ids))
            .values(state="claimed", worker=worker, lease_until=now + lease, updated_at=now)
        )
    details = conn.execute(
        select(
            send_journal.c.id,
            send_journal.c.subscriber_id,
            subscribers.c.email,
            subscribers.c.name,
            func.coalesce(send_journal.c.tier, subscribers.c.tier).label("tier"),
            people.receives().label("receives"),
        )
        .select_from(send_journal)
        .outerjoin(subscribers, subscribers.c.id == send_journal.c.subscriber_id)
        .outerjoin(
            subscriptions,
            and_(
                subscriptions.c.subscriber_id == send_journal.c.subscriber_id,
                subscriptions.c.newsletter == newsletter,
            ),
        )
        .where(_among(conn, send_journal.c.id, ids))
        .order_by(send_journal.c.id)
    ).all()
    return [
        Claimed(
            journal_id,
            subscriber_id,
            email or "",
            name or "",
            tier or "free",
            email is not None and bool(receives),
        )
        for journal_id, subscriber_id, email, name, tier, receives in details
    ]


def _among(conn: Connection, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN (ids)` with the ids as one parameter: a JSON array on SQLite, an array on
    PostgreSQL. SQLAlchemy renders an IN list anew at each execution, a parameter an id,
    which took a tenth of a send's CPU at three lists of 1,000 ids a batch (#16)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
    each = func.json_each(bindparam("ids", json.dumps(list(ids)))).table_valued("value")
    return column.in_(select(each.c.value))


def mark(
    conn: Connection,
    ids: Sequence[int],
    state: str,
    now: dt.datetime,
    *,
    worker: str | None = None,
    lease_until: dt.datetime | None = None,
    provider_id: str = "",
    error: str = "",
    per_row: dict[int, dict[str, str]] | None = None,
) -> None:
    """Set the state of journal rows; `per_row` gives some rows values of their own
    (provider_id, error), written in one executemany."""
    if not ids:
        return
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if worker is not None:
        values["worker"] = worker
    if state == "inflight":
        values["lease_until"] = lease_until
        values["attempts"] = send_journal.c.attempts + 1
    if provider_id:
        values["provider_id"] = provider_id
    if error:
        values["error"] = error
    own = {i: per_row[i] for i in ids if i in per_row} if per_row else {}
    plain = [i for i in ids if i not in own] if own else ids
    if plain:
        conn.execute(
            update(send_journal).where(_among(conn, send_journal.c.id, plain)).values(values)
        )
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for journal_id, extra in own.items():
        by_columns.setdefault(tuple(sorted(extra)), []).append({"b_id": journal_id, **extra})
    for columns, rows in by_columns.items():
        statement = (
            update(send_journal)
            .where(send_journal.c.id == bindparam("b_id"))
            .values({**values, **{c: bindparam(c) for c in columns}})
        )
        conn.execute(statement, rows)


def counts(conn: Connection, issue: str) -> dict[str, int]:
    query = (
        select(send_journal.c.state, func.count())
        .where(send_journal.c.issue == issue)
        .group_by(send_journal.c.state)
    )
    found = {state: 0 for state in STATES}
    found.update({state: int(n) for state, n in conn.execute(query)})
    return found


def rows(conn: Connection, issue: str, states: Iterable[str]) -> list[dict[str, Any]]:
    query = (
        select(send_journal, subscribers.c.email)
        .outerjoin(subscribers, subscribers.c.id == send_journal.c.subscriber_id)
        .where(send_journal.c.issue == issue, send_journal.c.state.in_(tuple(states)))
        .order_by(send_journal.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def resend_unknown(conn: Connection, issue: str, now: dt.datetime) -> int:
    result = conn.execute(
        update(send_journal)
        .where(send_journal.c.issue == issue, send_journal.c.state == "unknown")
        .values(state="pending", worker="", updated_at=now)
    )
    return int(result.rowcount or 0)


def retry_failed(conn: Connection, issue: str, now: dt.datetime) -> int:
    """Failed rows back to pending, to go through the claim loop again (once each); their
    old error is cleared, a new failure writes its own."""
    result = conn.execute(
        update(send_journal)
        .where(send_journal.c.issue == issue, send_journal.c.state == "failed")
        .values(state="pending", worker="", error="", updated_at=now)
    )
    return int(result.rowcount or 0)


def failure_reasons(conn: Connection, issue: str, top: int = 3) -> list[tuple[str, int]]:
    """The most common errors of the failed rows, counted (the address written as
    <address>, so that one server reply naming each recipient counts as one reason)."""
    query = (
        select(send_journal.c.error, subscribers.c.email)
        .outerjoin(subscribers, subscribers.c.id == send_journal.c.subscriber_id)
        .where(send_journal.c.issue == issue, send_journal.c.state == "failed")
    )
    reasons: Counter[str] = Counter()
    for error, email in conn.execute(query):
        text = error or "no reason recorded"
        if email:
            text = text.replace(f"<{email}>", "<address>").replace(email, "<address>")
        reasons[text] += 1
    return sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:top]


def mark_scheduled(conn: Connection, issue: str, at: dt.datetime) -> None:
    """The send was handed to the provider to go out at `at` (SendGrid's send_at): its
    rows are `sent` (handed over), and this says when the readers get it."""
    conn.execute(update(sends).where(sends.c.issue == issue).values(scheduled_for=at))


def finish(conn: Connection, issue: str, now: dt.datetime) -> None:
    remaining = conn.execute(
        select(func.count())
        .select_from(send_journal)
        .where(
            send_journal.c.issue == issue,
            or_(send_journal.c.state.in_(("pending", "claimed", "inflight"))),
        )
    ).scalar_one()
    if remaining == 0:
        conn.execute(update(sends).where(sends.c.issue == issue).values(finished_at=now))
