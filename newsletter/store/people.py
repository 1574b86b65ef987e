"""Queries on people: subscribers, subscriptions, suppressions and the consent history.

Every function takes a Connection inside the caller's transaction: the caller decides what
is one unit of work (an import is one; a one-click unsubscribe is another).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Index,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    distinct,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect

from newsletter.model import Recipient
from newsletter.store.schema import (
    consent_events,
    counters,
    subscribers,
    subscriptions,
    suppressions,
)

IN_CHUNK = 5000  # parameters per IN (...) list: under SQLite's 32,766 and PostgreSQL's 65,535


@dataclass(frozen=True)
class SubscriberRow:
    id: int
    email: str
    email_key: str
    email_hash: str
    name: str
    tier: str
    source: str
    attributes: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One line of the consent history: what happened to an address (by its hash), how, when.

    The history outlives the subscriber: `subscriber_id` is None once they are erased."""

    email_hash: str
    subscriber_id: int | None
    newsletter: str | None  # None: every newsletter (an erasure, a suppression)
    action: str  # subscribed | pending | unsubscribed | suppressed | erased
    method: str  # command | import | web | double-opt-in | preferences | one-click | webhook
    at: dt.datetime
    detail: str = ""

    def values(self) -> dict[str, Any]:
        return {
            "email_hash": self.email_hash,
            "subscriber_id": self.subscriber_id,
            "newsletter": self.newsletter,
            "action": self.action,
            "method": self.method,
            "detail": self.detail,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address (by its hash) that is never mailed again, and why."""

    email_hash: str
    reason: str  # bounce | complaint | unsubscribed | erased | …
    source: str  # what put it there: a command, an import file, a provider event
    created_at: dt.datetime

    def values(self) -> dict[str, Any]:
        return {
            "email_hash": self.email_hash,
            "reason": self.reason,
            "source": self.source,
            "created_at": self.created_at,
        }


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


@functools.lru_cache(maxsize=64)
def _insert_of(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Any, ...]]:
    """The INSERT and each column's bind processor, made once per table, columns and dialect
    (a one-click's single consent line spent a quarter of its insert making them, #16)."""
    convert = tuple(table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marker for _ in names)})"
    )
    return sql, convert


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows straight through the driver's executemany.

    Core's executemany processes every parameter of every row in Python; an import of a
    million rows spent most of its time there. Here each column's own bind processor (the
    dialect's, so values are stored exactly as Core would store them) runs once per distinct
    value, and the rows go to the driver as tuples.
    """
    if not rows:
        return
    names = tuple(rows[0])
    sql, convert = _insert_of(table, names, conn.dialect)
    columns = []
    for name, process in zip(names, convert, strict=True):
        values = [row[name] for row in rows]
        if process is not None:
            memo: dict[Any, Any] = {}
            converted: list[Any] = []
            for raw in values:
                if raw is None:
                    converted.append(None)
                elif isinstance(raw, (dict, list)):  # unhashable: memoise only the empty ones
                    if raw:
                        converted.append(process(raw))
                    else:
                        empty = ("empty", type(raw))
                        if empty not in memo:
                            memo[empty] = process(raw)
                        converted.append(memo[empty])
                else:
                    if raw not in memo:
                        memo[raw] = process(raw)
                    converted.append(memo[raw])
            values = converted
        columns.append(values)
    params = list(zip(*columns, strict=True))
    conn.exec_driver_sql(sql, params)


# indexes that a bulk load neither reads nor needs for a constraint: the consent history's
# (one by a random sha256: past half a million rows it outgrew the page cache) and the
# subscriptions' by newsletter and status
_LOAD_INDEXES = (consent_events, subscriptions)
_SORT_CACHE = -16384  # KiB (negative: a size, not pages)


@contextmanager
def bulk_load(conn: Connection) -> Iterator[None]:
    """Inside the caller's transaction: on SQLite, into a database with no subscribers yet,
    drop the indexes above and build them again at the end, sorting each once instead of
    keeping it in order row by row (a million-row import: see bench/README.md). Nothing else
    sees it: the write lock is held throughout, readers keep their snapshot, and an error
    (or a dry run) rolls the drop back with the rest. Elsewhere it changes nothing."""
    if conn.dialect.name != "sqlite" or conn.execute(select(subscribers.c.id).limit(1)).first():
        yield
        return
    dropped: list[Index] = [i for table in _LOAD_INDEXES for i in sorted(table.indexes, key=_name)]
    for index in dropped:
        index.drop(conn)
    yield
    # SQLite sorts for CREATE INDEX in memory up to the page cache's size, on top of the
    # cache itself: with a smaller cache meanwhile, the import's peak memory stays where
    # the load left it (a million rows: 302 MB with the 128 MB cache, 233 MB with 16 MB)
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = {_SORT_CACHE}")
    for index in dropped:
        index.create(conn)
    conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")


def _name(index: Index) -> str:
    return str(index.name)


def by_keys(conn: Connection, keys: Iterable[str]) -> dict[str, SubscriberRow]:
    found: dict[str, SubscriberRow] = {}
    for chunk in _chunks(sorted(set(keys))):
        for row in conn.execute(select(subscribers).where(subscribers.c.email_key.in_(chunk))):
            found[row.email_key] = SubscriberRow(**row._mapping)
    return found


# statements of the one-click path built once (#16): building a Core expression cost more
# than running it (a one-click spent a third of its transaction on it)
_BY_ID = select(subscribers).where(subscribers.c.id == bindparam("b_id"))
_SUBSCRIPTIONS_OF = select(subscriptions).where(subscriptions.c.subscriber_id == bindparam("b_id"))
_SET_STATUS: dict[tuple[str, ...], Update] = {}


def by_id(conn: Connection, subscriber_id: int) -> SubscriberRow | None:
    row = conn.execute(_BY_ID, {"b_id": subscriber_id}).first()
    return SubscriberRow(**row._mapping) if row else None


_STATUS_OF = (
    select(subscribers.c.email, subscribers.c.email_hash, subscriptions.c.status)
    .select_from(
        subscribers.outerjoin(
            subscriptions,
            and_(
                subscriptions.c.subscriber_id == subscribers.c.id,
                subscriptions.c.newsletter == bindparam("b_newsletter"),
            ),
        )
    )
    .where(subscribers.c.id == bindparam("b_id"))
)


def status_of(
    conn: Connection, subscriber_id: int, newsletter: str
) -> tuple[str, str, str | None] | None:
    """(address, its hash, the status of that subscription or None), or None if there is no
    such subscriber: what a one-click needs, in one statement and three columns (by_id and
    subscriptions_of convert every column of two tables)."""
    row = conn.execute(_STATUS_OF, {"b_id": subscriber_id, "b_newsletter": newsletter}).first()
    return (row[0], row[1], row[2]) if row else None


def by_key(conn: Connection, key: str) -> SubscriberRow | None:
    return by_keys(conn, [key]).get(key)


def suppressed(conn: Connection, hashes: Iterable[str]) -> dict[str, str]:
    """email_hash → reason, for the given hashes that are on the suppression list."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(hashes))):
        query = select(suppressions.c.email_hash, suppressions.c.reason).where(
            suppressions.c.email_hash.in_(chunk)
        )
        found.update({r.email_hash: r.reason for r in conn.execute(query)})
    return found


def any_suppressed(conn: Connection) -> bool:
    return conn.execute(select(exists().where(suppressions.c.email_hash.is_not(None)))).scalar_one()


def statuses(conn: Connection, subscriber_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """(subscriber id, newsletter) → status."""
    found: dict[tuple[int, str], str] = {}
    for chunk in _chunks(sorted(set(subscriber_ids))):
        query = select(
            subscriptions.c.subscriber_id, subscriptions.c.newsletter, subscriptions.c.status
        ).where(subscriptions.c.subscriber_id.in_(chunk))
        found.update({(r.subscriber_id, r.newsletter): r.status for r in conn.execute(query)})
    return found


def insert_subscribers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    bulk_insert(conn, subscribers, rows)


def reserve_ids(conn: Connection, count: int) -> list[int]:
    """Ids for `count` new subscribers, so that a bulk insert need not read them back.

    SQLite: the caller holds the write lock (BEGIN IMMEDIATE); ids continue from the highest
    ever handed out (the `counters` row), never from max(id), which falls when the newest
    subscriber is erased. PostgreSQL: taken from the column's sequence, as the server would."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        query = text(
            "SELECT nextval(pg_get_serial_sequence('subscribers', 'id')) "
            "FROM generate_series(1, :n)"
        )
        return [int(i) for (i,) in conn.execute(query, {"n": count})]
    mark = counters.c.name == "subscribers"
    last = conn.execute(select(counters.c.value).where(mark)).scalar()
    highest = conn.execute(select(func.coalesce(func.max(subscribers.c.id), 0))).scalar_one()
    start = max(last or 0, highest) + 1
    if last is None:
        conn.execute(insert(counters).values(name="subscribers", value=start + count - 1))
    else:
        conn.execute(update(counters).where(mark).values(value=start + count - 1))
    return list(range(start, start + count))


def update_subscribers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """rows: dicts with b_id and the columns to set (the same columns in every row)."""

    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(k for k in row if k != "b_id")), []).append(row)
    for columns, group in by_columns.items():
        statement = (
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values({c: bindparam(c) for c in columns})
        )
        conn.execute(statement, group)


def change_status(
    conn: Connection,
    subscriber_id: int,
    email_hash: str,
    newsletters: Sequence[str],
    status: str,
    method: str,
    now: dt.datetime,
    detail: str = "",
    existing: Container[str] | None = None,
) -> None:
    """Give each of `newsletters` this status, each with its line of consent history: the one
    way a subscription changes. `existing`: the newsletters that already have a subscription
    row (None: all of them)."""
    for key in newsletters:
        existed = existing is None or key in existing
        set_status(conn, subscriber_id, key, status, method, now, existed=existed)
    record(
        conn,
        [
            ConsentEvent(email_hash, subscriber_id, key, status, method, now, detail)
            for key in newsletters
        ],
    )


def unsubscribe(
    conn: Connection,
    subscriber_id: int,
    email_hash: str,
    newsletters: Sequence[str],
    method: str,
    now: dt.datetime,
    detail: str = "",
) -> None:
    """Unsubscribe from existing subscriptions: the one way the editor's commands, a
    subscriber's links and provider events take one away."""
    change_status(conn, subscriber_id, email_hash, newsletters, "unsubscribed", method, now, detail)


def set_status(
    conn: Connection,
    subscriber_id: int,
    newsletter: str,
    status: str,
    method: str,
    now: dt.datetime,
    existed: bool,
) -> None:
    """Insert or change one subscription's status, keeping when it (un)subscribed."""
    values: dict[str, Any] = {"status": status, "method": method, "updated_at": now}
    if status == "subscribed":
        values["subscribed_at"] = now
    if status == "unsubscribed":
        values["unsubscribed_at"] = now
    if existed:
        columns = tuple(values)
        statement = _SET_STATUS.get(columns)
        if statement is None:
            statement = _SET_STATUS[columns] = (
                update(subscriptions)
                .where(
                    and_(
                        subscriptions.c.subscriber_id == bindparam("b_id"),
                        subscriptions.c.newsletter == bindparam("b_newsletter"),
                    )
                )
                .values({c: bindparam(c) for c in columns})
            )
        conn.execute(statement, {"b_id": subscriber_id, "b_newsletter": newsletter, **values})
    else:
        conn.execute(
            insert(subscriptions).values(
                subscriber_id=subscriber_id, newsletter=newsletter, created_at=now, **values
            )
        )


def insert_subscriptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    bulk_insert(conn, subscriptions, rows)


def update_subscriptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """rows: b_id, b_newsletter, status, method, updated_at, subscribed_at, unsubscribed_at."""

    if not rows:
        return
    statement = (
        update(subscriptions)
        .where(
            and_(
                subscriptions.c.subscriber_id == bindparam("b_id"),
                subscriptions.c.newsletter == bindparam("b_newsletter"),
            )
        )
        .values(
            status=bindparam("status"),
            method=bindparam("method"),
            updated_at=bindparam("updated_at"),
            subscribed_at=func.coalesce(bindparam("subscribed_at"), subscriptions.c.subscribed_at),
            unsubscribed_at=func.coalesce(
                bindparam("unsubscribed_at"), subscriptions.c.unsubscribed_at
            ),
        )
    )
    conn.execute(statement, rows)


def suppress(conn: Connection, rows: Sequence[Suppression]) -> None:
    """A suppressed address keeps its first reason."""
    if not rows:
        return
    known = suppressed(conn, [r.email_hash for r in rows])
    fresh = [r.values() for r in rows if r.email_hash not in known]
    if fresh:
        conn.execute(insert(suppressions), fresh)


def record(conn: Connection, events: Sequence[ConsentEvent]) -> None:
    """Append to the consent history."""
    bulk_insert(conn, consent_events, [e.values() for e in events])


def history(conn: Connection, email_hash: str) -> list[dict[str, Any]]:
    query = (
        select(consent_events)
        .where(consent_events.c.email_hash == email_hash)
        .order_by(consent_events.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def requests_since(conn: Connection, email_hash: str, method: str, since: dt.datetime) -> int:
    """How many sign-up requests (one per moment, whatever the newsletters) since `since`;
    a `method` holding % is a LIKE pattern (every API key's: "api:%")."""
    c = consent_events.c
    by_method = c.method.like(method) if "%" in method else c.method == method
    query = select(func.count(distinct(c.at))).where(
        c.email_hash == email_hash, c.action == "pending", by_method, c.at > since
    )
    return int(conn.scalar(query) or 0)


def subscriptions_of(conn: Connection, subscriber_id: int) -> dict[str, dict[str, Any]]:
    return {
        r.newsletter: dict(r._mapping)
        for r in conn.execute(_SUBSCRIPTIONS_OF, {"b_id": subscriber_id})
    }


def delete_subscriber(conn: Connection, subscriber_id: int) -> None:
    conn.execute(delete(subscriptions).where(subscriptions.c.subscriber_id == subscriber_id))
    conn.execute(
        update(consent_events)
        .where(consent_events.c.subscriber_id == subscriber_id)
        .values(subscriber_id=None)
    )
    conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))


def receives() -> ColumnElement[bool]:
    """The one rule for who receives an issue, on a row of a subscriber joined to their
    subscription to it: subscribed, and not suppressed. The dry-run count (`recipients`), the
    journal's fixing of recipients (`journal.start`) and its check at hand-over
    (`journal.claim`) all use it, so they cannot drift apart."""
    suppressed = exists().where(suppressions.c.email_hash == subscribers.c.email_hash)
    return and_(subscriptions.c.status == "subscribed", ~suppressed)


def receiving(newsletter: str, *columns: ColumnElement[Any]) -> Select[Any]:
    """`columns` of everyone who `receives` `newsletter`, in id order."""
    return (
        select(*columns)
        .select_from(subscribers)
        .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        .where(subscriptions.c.newsletter == newsletter, receives())
        .order_by(subscribers.c.id)
    )


def recipients(conn: Connection, newsletter: str, batch: int = 1000) -> Iterator[Recipient]:
    """Every subscriber `receiving` `newsletter`, streamed: memory stays flat however long
    the list (server-side cursor on PostgreSQL, yield_per everywhere)."""
    query = receiving(
        newsletter, subscribers.c.id, subscribers.c.email, subscribers.c.name, subscribers.c.tier
    )
    for row in conn.execution_options(yield_per=batch).execute(query):
        yield Recipient(row.id, row.email, row.name, row.tier)


def all_rows(
    conn: Connection, batch: int = 1000
) -> Iterator[tuple[SubscriberRow, str | None, str | None, str | None]]:
    """(subscriber, newsletter, status, suppression reason) for every subscriber and newsletter,
    streamed in email order; a subscriber with no subscription appears once with None."""
    query = (
        select(
            subscribers, subscriptions.c.newsletter, subscriptions.c.status, suppressions.c.reason
        )
        .outerjoin(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        .outerjoin(suppressions, suppressions.c.email_hash == subscribers.c.email_hash)
        .order_by(subscribers.c.email_key, subscriptions.c.newsletter)
    )
    width = len(subscribers.c)
    for row in conn.execution_options(yield_per=batch).execute(query):
        values = tuple(row)
        person = SubscriberRow(**dict(zip(subscribers.c.keys(), values[:width], strict=True)))
        yield person, values[width], values[width + 1], values[width + 2]


def counts(conn: Connection) -> list[tuple[str, str, str, bool, int]]:
    """(newsletter, tier, status, suppressed, count) over all subscriptions."""
    is_suppressed = exists().where(suppressions.c.email_hash == subscribers.c.email_hash)
    query = (
        select(
            subscriptions.c.newsletter,
            subscribers.c.tier,
            subscriptions.c.status,
            is_suppressed.label("sup"),
            func.count(),
        )
        .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
        .group_by(subscriptions.c.newsletter, subscribers.c.tier, subscriptions.c.status, "sup")
    )
    return [(r[0], r[1], r[2], bool(r[3]), int(r[4])) for r in conn.execute(query)]


def changed_page(
    conn: Connection,
    *,
    after: int,
    limit: int,
    newsletter: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
) -> list[int]:
    """Subscriber ids after `after`, in id order (keyset: a row inserted meanwhile comes
    later, never shifts a page), at most `limit`. `status` (with `newsletter`: that
    subscription's) may be 'suppressed'; other statuses exclude suppressed addresses, as
    `subscribers list` does. `since`: changed after it (the record, a subscription or a
    suppression), so an unsubscribe shows up."""
    s, sub, sup = subscribers.c, subscriptions.c, suppressions.c
    query = select(s.id).where(s.id > after).order_by(s.id).limit(limit)
    is_suppressed = exists().where(sup.email_hash == s.email_hash)
    held = [sub.subscriber_id == s.id]
    if newsletter is not None:
        held.append(sub.newsletter == newsletter)
    if status not in (None, "suppressed"):
        held.append(sub.status == status)
    if len(held) > 1:
        query = query.where(exists().where(*held))
    if status == "suppressed":
        query = query.where(is_suppressed)
    elif status is not None:
        query = query.where(~is_suppressed)
    if since is not None:
        query = query.where(
            or_(
                s.updated_at > since,
                exists().where(sub.subscriber_id == s.id, sub.updated_at > since),
                exists().where(sup.email_hash == s.email_hash, sup.created_at > since),
            )
        )
    return [int(i) for (i,) in conn.execute(query)]


def by_ids(conn: Connection, ids: Sequence[int]) -> list[SubscriberRow]:
    """In the order of `ids` (those that exist)."""
    found: dict[int, SubscriberRow] = {}
    for chunk in _chunks(list(ids)):
        for row in conn.execute(select(subscribers).where(subscribers.c.id.in_(chunk))):
            found[row.id] = SubscriberRow(**row._mapping)
    return [found[i] for i in ids if i in found]


def with_tier(conn: Connection, tier: str) -> list[SubscriberRow]:
    query = select(subscribers).where(subscribers.c.tier == tier).order_by(subscribers.c.id)
    return [SubscriberRow(**r._mapping) for r in conn.execute(query)]


# one subscriber with their statuses and suppression in one query, by key or by id: what
# every API answer reads (built once; see access._BY_HASH)
_PROFILE = (
    select(subscribers, subscriptions.c.newsletter, subscriptions.c.status, suppressions.c.reason)
    .outerjoin(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
    .outerjoin(suppressions, suppressions.c.email_hash == subscribers.c.email_hash)
)
_PROFILE_BY_KEY = _PROFILE.where(subscribers.c.email_key == bindparam("k"))
_PROFILE_BY_ID = _PROFILE.where(subscribers.c.id == bindparam("i"))


def profile_row(
    conn: Connection, *, key: str | None = None, subscriber_id: int | None = None
) -> tuple[SubscriberRow, dict[str, str], str | None] | None:
    """(subscriber, newsletter → status, suppression reason), or None."""
    if key is not None:
        rows = conn.execute(_PROFILE_BY_KEY, {"k": key}).all()
    else:
        rows = conn.execute(_PROFILE_BY_ID, {"i": subscriber_id}).all()
    if not rows:
        return None
    width = len(subscribers.c)
    first = tuple(rows[0])
    person = SubscriberRow(**dict(zip(subscribers.c.keys(), first[:width], strict=True)))
    statuses = {r[width]: r[width + 1] for r in rows if r[width] is not None}
    return person, statuses, first[width + 2]
