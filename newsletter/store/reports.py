"""The aggregations behind `newsletter report` and the per-story part of `newsletter stats`.

Every figure is counted by the database (GROUP BY, COUNT DISTINCT, window functions), so a
report over a million delivery events reads a few hundred rows into Python, never the
events themselves. Revision 0009 adds the indexes these queries walk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    distinct,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)

from newsletter.store.people import receives
from newsletter.store.schema import (
    UtcDateTime,
    consent_events,
    delivery_events,
    send_journal,
    sends,
    subscribers,
    subscriptions,
)

REACHED = ("sent", "unknown")  # journal states of a message that (may have) left


@dataclass(frozen=True)
class SendRow:
    issue: str
    newsletter: str
    backend: str
    started_at: dt.datetime


def sends_of(conn: Connection, newsletter: str | None = None) -> list[SendRow]:
    """Every send (one row per issue; a few hundred a year), oldest first."""
    s = sends.c
    query = select(s.issue, s.newsletter, s.backend, s.started_at).order_by(s.started_at)
    if newsletter is not None:
        query = query.where(s.newsletter == newsletter)
    return [SendRow(r[0], r[1], r[2], r[3]) for r in conn.execute(query)]


def journal_counts(conn: Connection, issues: Sequence[str]) -> dict[str, dict[str, int]]:
    """issue → journal state → recipients."""
    j = send_journal.c
    query = select(j.issue, j.state, func.count()).where(j.issue.in_(issues))
    found: dict[str, dict[str, int]] = {}
    for issue, state, n in conn.execute(query.group_by(j.issue, j.state)):
        found.setdefault(issue, {})[state] = int(n)
    return found


EventKey = tuple[str, bool, str]  # event, machine, bounce type ("" for other events)


def event_counts(
    conn: Connection, issues: Sequence[str]
) -> dict[str, dict[EventKey, tuple[int, int]]]:
    """issue → (event, machine, bounce type) → (events, distinct people). Grouped in the
    order of the covering index (issue, event, machine, subscriber_id); bounces, a few, are
    grouped by their type apart (a CASE in the GROUP BY made SQLite sort all events: 4x)."""
    e = delivery_events.c
    query = (
        select(e.issue, e.event, e.machine, func.count(), func.count(distinct(e.subscriber_id)))
        .where(e.issue.in_(issues))
        .group_by(e.issue, e.event, e.machine)
    )
    found: dict[str, dict[EventKey, tuple[int, int]]] = {}
    for issue, event, machine, n, people in conn.execute(query):
        if event != "bounce":
            found.setdefault(issue, {})[(event, bool(machine), "")] = (int(n), int(people))
    bounces = (
        select(e.issue, e.machine, e.detail, func.count(), func.count(distinct(e.subscriber_id)))
        .where(e.issue.in_(issues), e.event == "bounce")
        .group_by(e.issue, e.machine, e.detail)
    )
    for issue, machine, detail, n, people in conn.execute(bounces):
        found.setdefault(issue, {})[("bounce", bool(machine), detail)] = (int(n), int(people))
    return found


def unsubscribes_by_method(conn: Connection, issues: Sequence[str]) -> dict[str, dict[str, int]]:
    """issue → consent method → recipients of the issue who left its newsletter after it went
    out and before the newsletter's next send (one window per send, from LEAD over sends)."""
    s = sends.c
    c = consent_events.c
    j = send_journal.c
    # the last send's window ends in a far future, not at NULL: an OR IS NULL would keep the
    # database from bounding its index range, and each window would read the rest of the
    # history (a year: 5 s)
    never = literal(dt.datetime(9999, 12, 31, tzinfo=dt.UTC), UtcDateTime)
    window = select(
        s.issue,
        s.newsletter,
        s.started_at.label("start"),
        func.lead(s.started_at, 1, never)
        .over(partition_by=s.newsletter, order_by=s.started_at)
        .label("end"),
    ).subquery("windows")
    w = window.c
    received = exists(
        select(literal(1)).where(
            j.issue == w.issue, j.subscriber_id == c.subscriber_id, j.state.in_(REACHED)
        )
    )
    query = (
        select(w.issue, c.method, func.count(distinct(c.subscriber_id)))
        .select_from(
            window.join(
                consent_events,
                and_(
                    c.newsletter == w.newsletter,
                    c.at >= w.start,
                    c.at < w.end,
                ),
            )
        )
        .where(w.issue.in_(issues), c.action == "unsubscribed", received)
        .group_by(w.issue, c.method)
    )
    found: dict[str, dict[str, int]] = {}
    for issue, method, n in conn.execute(query):
        found.setdefault(issue, {})[method] = int(n)
    return found


def _day(conn: Connection, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a stored time, as YYYY-MM-DD."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps UTC text: "YYYY-MM-DD HH:MM:SS"


@dataclass(frozen=True)
class ListChange:
    newsletter: str
    day: dt.date
    kind: str  # joined | left
    action: str  # subscribed | unsubscribed | pending | suppressed | erased
    method: str  # how: import, double-opt-in, one-click, preferences, api:<key>, webhook…
    reason: str  # for a suppression: bounce | complaint | other; else ""
    count: int


STATE_ACTIONS = ("subscribed", "unsubscribed", "pending", "suppressed", "erased")


def list_changes(
    conn: Connection, until: dt.datetime, newsletter: str | None = None
) -> list[ListChange]:
    """Every join and departure per newsletter and day before `until`, from the consent
    history, counted per (day, kind, how). A person joins when their subscription becomes
    subscribed and leaves when it stops being so; a suppression or an erasure (recorded for
    no newsletter) ends every subscription the address had. People are told apart by the
    address's hash, which the history keeps after an erasure."""
    c = consent_events.c
    before = c.at < until

    def reason(detail: Any, action: Any) -> ColumnElement[str]:
        return case(
            (and_(action == "suppressed", detail.like("%spamreport%")), "complaint"),
            (and_(action == "suppressed", detail.like("%bounce%")), "bounce"),
            (action == "suppressed", "other"),
            else_="",
        )

    own = select(
        c.email_hash,
        c.newsletter,
        c.at,
        c.id,
        c.action,
        c.method,
        reason(c.detail, c.action).label("reason"),
    ).where(c.newsletter.is_not(None), c.action.in_(STATE_ACTIONS), before)
    # a suppression or an erasure, for every newsletter the address had a history on: a
    # join from those few events (by the address's index), never a pass over the history
    g = consent_events.alias("g")
    n = consent_events.alias("n")
    global_ = and_(
        g.c.newsletter.is_(None), g.c.action.in_(("suppressed", "erased")), g.c.at < until
    )
    everywhere = (
        select(
            g.c.email_hash,
            n.c.newsletter,
            g.c.at,
            g.c.id,
            g.c.action,
            g.c.method,
            reason(g.c.detail, g.c.action).label("reason"),
        )
        .select_from(g.join(n, and_(n.c.email_hash == g.c.email_hash, n.c.newsletter.is_not(None))))
        .where(global_)
        .distinct()
    )
    if newsletter is not None:
        own = own.where(c.newsletter == newsletter)
        everywhere = everywhere.where(n.c.newsletter == newsletter)
    # without any such event the history alone, which its index gives in order (no sort)
    anywhere = conn.scalar(select(literal(1)).select_from(g).where(global_).limit(1))
    rows = (union_all(own, everywhere) if anywhere else own).subquery("history")
    h = rows.c
    state = case((h.action == "subscribed", 1), else_=0)
    ordered = select(
        h.newsletter,
        h.at,
        h.action,
        h.method,
        h.reason,
        state.label("state"),
        func.lag(state)
        .over(partition_by=(h.email_hash, h.newsletter), order_by=(h.at, h.id))
        .label("prev"),
    ).subquery("ordered")
    o = ordered.c
    prev = func.coalesce(o.prev, 0)
    kind = case((and_(o.state == 1, prev == 0), "joined"), else_="left")
    day = _day(conn, o.at)
    query = (
        select(o.newsletter, day, kind, o.action, o.method, o.reason, func.count())
        .where(o.state != prev)
        .group_by(o.newsletter, day, kind, o.action, o.method, o.reason)
        .order_by(o.newsletter, day)
    )
    return [
        ListChange(r[0], dt.date.fromisoformat(r[1]), r[2], r[3], r[4], r[5], int(r[6]))
        for r in conn.execute(query)
    ]


Overlap = tuple[dict[str, int], dict[tuple[str, str], int]]


def _overlap(conn: Connection, people: Any, newsletters: Sequence[str]) -> Overlap:
    """From (newsletter, subscriber_id) rows: people per newsletter and per ordered pair.
    One pass grouped by person, a flag per newsletter, and sums of flags and their products:
    no self-join of the rows (a few newsletters, many people)."""
    if not newsletters:
        return {}, {}
    flags = [
        func.max(case((people.c.newsletter == key, 1), else_=0)).label(f"f{i}")
        for i, key in enumerate(newsletters)
    ]
    person = select(*flags).group_by(people.c.subscriber_id).subquery("person")
    pairs = [(i, j) for i in range(len(newsletters)) for j in range(i + 1, len(newsletters))]
    columns = [func.coalesce(func.sum(person.c[f"f{i}"]), 0) for i in range(len(newsletters))]
    columns += [func.coalesce(func.sum(person.c[f"f{i}"] * person.c[f"f{j}"]), 0) for i, j in pairs]
    row = conn.execute(select(*columns)).one()
    totals = {key: int(row[i]) for i, key in enumerate(newsletters)}
    both: dict[tuple[str, str], int] = {}
    for n, (i, j) in enumerate(pairs):
        value = int(row[len(newsletters) + n])
        both[(newsletters[i], newsletters[j])] = both[(newsletters[j], newsletters[i])] = value
    return totals, both


def readers_overlap(conn: Connection, issues: Sequence[str], newsletters: Sequence[str]) -> Overlap:
    """Readers per newsletter (people who opened, humanly, or clicked one of its `issues`),
    and per ordered pair of newsletters how many read both."""
    e = delivery_events.c
    read = or_(and_(e.event == "open", e.machine == false()), e.event == "click")
    readers = (
        select(sends.c.newsletter, e.subscriber_id)
        .select_from(delivery_events.join(sends, sends.c.issue == e.issue))
        .where(e.issue.in_(issues), read, e.subscriber_id.is_not(None))
        .subquery("readers")
    )
    return _overlap(conn, readers, newsletters)


def subscribers_overlap(conn: Connection, newsletters: Sequence[str]) -> Overlap:
    """People receiving each newsletter now (subscribed, not suppressed: `people.receives`),
    and per ordered pair of newsletters how many receive both."""
    receiving = (
        select(subscriptions.c.newsletter, subscriptions.c.subscriber_id)
        .select_from(
            subscribers.join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
        )
        .where(receives(), subscriptions.c.newsletter.in_(newsletters))
        .subquery("receiving")
    )
    return _overlap(conn, receiving, newsletters)


def click_urls(conn: Connection, issues: Sequence[str]) -> list[tuple[str, str]]:
    """The distinct (issue, url) pairs clicked: a few dozen per issue, whatever the clicks."""
    e = delivery_events.c
    query = select(e.issue, e.url).where(e.issue.in_(issues), e.event == "click").distinct()
    return [(r[0], r[1]) for r in conn.execute(query)]


@dataclass(frozen=True)
class LinkClicks:
    issue: str
    link: str  # what the caller mapped the URL to: a story key or a kind of link
    tier: str  # the clicker's tier now ("unknown" once erased)
    clicks: int
    clickers: int  # distinct people


def link_clicks(
    conn: Connection, mapping: Iterable[tuple[str, str, str]], *, by_tier: bool = True
) -> list[LinkClicks]:
    """Clicks and distinct clickers per (issue, link, tier), where `mapping` names the link
    each clicked (issue, url) stands for: several URLs (tracking variants) may map to one
    story, and a person who clicked two of them counts once. The mapping goes into a
    temporary table so the database joins it, however many URLs there are."""
    rows = [{"issue": i, "url": u, "link": k} for i, u, k in mapping]
    if not rows:
        return []
    links = Table(
        "report_links",
        MetaData(),
        Column("issue", String(96)),
        Column("url", Text),
        Column("link", Text),
        prefixes=["TEMPORARY"],
    )
    links.create(conn)
    try:
        conn.execute(insert(links), rows)
        if conn.dialect.name == "postgresql":  # a temporary table has no statistics else
            conn.exec_driver_sql("ANALYZE report_links")
        e = delivery_events.c
        joined = delivery_events.join(links, and_(links.c.issue == e.issue, links.c.url == e.url))
        tier: ColumnElement[str] = literal("all")
        if by_tier:
            tier = func.coalesce(subscribers.c.tier, "unknown")
            joined = joined.outerjoin(subscribers, subscribers.c.id == e.subscriber_id)
        query = (
            select(
                links.c.issue,
                links.c.link,
                tier,
                func.count(),
                func.count(distinct(e.subscriber_id)),
            )
            .select_from(joined)
            .where(e.event == "click")
            .group_by(links.c.issue, links.c.link, tier)
        )
        return [LinkClicks(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in conn.execute(query)]
    finally:
        links.drop(conn)


def delivered_people(conn: Connection, issues: Sequence[str]) -> dict[str, dict[str, int]]:
    """issue → {"all": people delivered to}: `delivered_by_tier` without the tiers."""
    e = delivery_events.c
    query = (
        select(e.issue, func.count(distinct(e.subscriber_id)))
        .where(e.issue.in_(issues), e.event == "delivered")
        .group_by(e.issue)
    )
    return {issue: {"all": int(n)} for issue, n in conn.execute(query)}


def delivered_by_tier(conn: Connection, issues: Sequence[str]) -> dict[str, dict[str, int]]:
    """issue → tier (now) → people delivered to."""
    e = delivery_events.c
    tier = func.coalesce(subscribers.c.tier, "unknown")
    query = (
        select(e.issue, tier, func.count(distinct(e.subscriber_id)))
        .select_from(delivery_events.outerjoin(subscribers, subscribers.c.id == e.subscriber_id))
        .where(e.issue.in_(issues), e.event == "delivered")
        .group_by(e.issue, tier)
    )
    found: dict[str, dict[str, int]] = {}
    for issue, t, n in conn.execute(query):
        found.setdefault(issue, {})[t] = int(n)
    return found
