"""Queries on delivery events (the provider's webhook) and the per-issue counts built on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, distinct, func, select
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.store.people import bulk_insert
from newsletter.store.schema import (
    bounce_messages,
    consent_events,
    delivery_events,
    send_journal,
    sends,
)

CHUNK = 500  # rows per INSERT: 12 columns each, far under both databases' parameter limits


def insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store the events not stored before; the event ids that were new.

    ON CONFLICT DO NOTHING with RETURNING: two deliveries of one event racing on
    PostgreSQL store it once, and only the one that stored it acts on it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    new: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        chunk = list(rows[start : start + CHUNK])
        ids = [r["event_id"] for r in chunk]
        seen = set(
            conn.scalars(
                select(delivery_events.c.event_id).where(delivery_events.c.event_id.in_(ids))
            )
        )
        fresh = {r["event_id"]: r for r in chunk if r["event_id"] not in seen}  # dedupe in-batch
        if not fresh:
            continue
        if conn.dialect.name == "sqlite":
            # the transaction holds SQLite's one write lock from its BEGIN IMMEDIATE: no one
            # can store an event between the SELECT above and this INSERT, so every fresh row
            # is new, and the rows go straight to the driver (Core spent two thirds of a
            # 1,000-event request converting parameters, #16)
            bulk_insert(conn, delivery_events, list(fresh.values()))
            new.update(fresh)
            continue
        # one statement compiled once, run for many rows ("insertmanyvalues"): a multi-row
        # VALUES clause would be compiled anew for each batch, 0.4 s per 1,000 events
        statement = (
            dialect.insert(delivery_events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(delivery_events.c.event_id)
        )
        new.update(conn.execute(statement, list(fresh.values())).scalars())
    return new


def count(conn: Connection) -> int:
    return int(conn.scalar(select(func.count()).select_from(delivery_events)) or 0)


def per_event(conn: Connection, issue: str) -> dict[tuple[str, bool], tuple[int, int]]:
    """(event, machine) → (events, distinct subscribers) for one issue."""
    c = delivery_events.c
    query = (
        select(c.event, c.machine, func.count(), func.count(distinct(c.subscriber_id)))
        .where(c.issue == issue)
        .group_by(c.event, c.machine)
    )
    return {(r[0], bool(r[1])): (int(r[2]), int(r[3])) for r in conn.execute(query)}


def detail_counts(conn: Connection, issue: str, event: str) -> dict[str, int]:
    c = delivery_events.c
    query = (
        select(c.detail, func.count(distinct(c.subscriber_id)))
        .where(c.issue == issue, c.event == event)
        .group_by(c.detail)
    )
    return {r[0]: int(r[1]) for r in conn.execute(query)}


def top_links(conn: Connection, issue: str, limit: int = 10) -> list[tuple[str, int, int]]:
    """(url, clicks, distinct clickers), most clicked first."""
    c = delivery_events.c
    clicks = func.count().label("clicks")
    query = (
        select(c.url, clicks, func.count(distinct(c.subscriber_id)))
        .where(c.issue == issue, c.event == "click")
        .group_by(c.url)
        .order_by(clicks.desc(), c.url)
        .limit(limit)
    )
    return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(query)]


def sent_without_events(conn: Connection, issue: str) -> int:
    """Recipients the journal records as sent for whom the provider never reported anything."""
    j = send_journal.c
    e = delivery_events.c
    heard = select(e.subscriber_id).where(e.issue == issue, e.subscriber_id.is_not(None))
    query = (
        select(func.count())
        .select_from(send_journal)
        .where(j.issue == issue, j.state == "sent", j.subscriber_id.not_in(heard))
    )
    return int(conn.scalar(query) or 0)


def events_unknown_to_journal(conn: Connection, issue: str) -> int:
    """Events naming this issue for a recipient the journal has no sent (or unknown) row for."""
    j = send_journal.c
    e = delivery_events.c
    journaled = select(j.subscriber_id).where(j.issue == issue, j.state.in_(["sent", "unknown"]))
    query = (
        select(func.count())
        .select_from(delivery_events)
        .where(
            e.issue == issue,
            (e.subscriber_id.is_(None)) | e.subscriber_id.not_in(journaled),
        )
    )
    return int(conn.scalar(query) or 0)


def send_row(conn: Connection, issue: str) -> dict[str, Any] | None:
    row = conn.execute(select(sends).where(sends.c.issue == issue)).first()
    return dict(row._mapping) if row else None


def journal_states(conn: Connection, issue: str) -> dict[str, int]:
    j = send_journal.c
    query = select(j.state, func.count()).where(j.issue == issue).group_by(j.state)
    return {r[0]: int(r[1]) for r in conn.execute(query)}


def unsubscribed_after(conn: Connection, issue: str, newsletter: str, since: dt.datetime) -> int:
    """Recipients of `issue` who unsubscribed from its newsletter (one-click, preferences,
    webhook, command) after it went out and before the newsletter's next send started."""
    j = send_journal.c
    c = consent_events.c
    following = select(func.min(sends.c.started_at)).where(
        sends.c.newsletter == newsletter, sends.c.started_at > since
    )
    until = conn.scalar(following)
    recipients = select(j.subscriber_id).where(j.issue == issue, j.state.in_(["sent", "unknown"]))
    query = select(func.count(distinct(c.subscriber_id))).where(
        c.newsletter == newsletter,
        c.action == "unsubscribed",
        c.at >= since,
        c.subscriber_id.in_(recipients),
        *([c.at < until] if until is not None else []),
    )
    return int(conn.scalar(query) or 0)


def journal_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    j = send_journal.c
    query = (
        select(j.issue, j.state, j.updated_at)
        .where(j.subscriber_id == subscriber_id)
        .order_by(j.issue)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def events_of(conn: Connection, subscriber_id: int) -> list[dict[str, Any]]:
    e = delivery_events.c
    query = (
        select(e.event, e.issue, e.url, e.detail, e.machine, e.occurred_at)
        .where(e.subscriber_id == subscriber_id)
        .order_by(e.occurred_at, e.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def set_email_hash(conn: Connection, event_id: str, email_hash: str) -> None:
    c = delivery_events.c
    conn.execute(
        delivery_events.update().where(c.event_id == event_id).values(email_hash=email_hash)
    )


def soft_bounces(conn: Connection, email_hash: str, since: dt.datetime) -> int:
    """Transient failures (bounce events of detail "soft") of an address since a time."""
    c = delivery_events.c
    query = (
        select(func.count())
        .select_from(delivery_events)
        .where(
            c.email_hash == email_hash,
            c.event == "bounce",
            c.detail == "soft",
            c.occurred_at >= since,
        )
    )
    return int(conn.scalar(query) or 0)


def bounce_message_seen(conn: Connection, message_id: str) -> bool:
    query = select(bounce_messages.c.message_id).where(bounce_messages.c.message_id == message_id)
    return conn.execute(query).first() is not None


def mark_bounce_message(
    conn: Connection, message_id: str, kind: str, how: str, now: dt.datetime
) -> bool:
    """Record a processed bounce-mailbox message; False if it was recorded already (two runs
    racing on PostgreSQL: only one acts)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(bounce_messages)
        .values(message_id=message_id, kind=kind, how=how, processed_at=now)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(bounce_messages.c.message_id)
    )
    return conn.execute(statement).first() is not None
