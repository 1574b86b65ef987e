"""What a subscriber does by link, with the id a signed token carries (never an address):
one-click unsubscribe, their preferences, their data (the right of access), erasure.

A link in an email proves only that one holds the email, and emails get forwarded: it may
unsubscribe and leave newsletters at once, but a newsletter added on the preferences page
goes through double opt-in (`optin`), and the data and erasure are for the holder of a
fresh, short-lived link mailed to the address (the web service checks it before calling
`data_of` or `forget_id`). (The editor's commands on the same lists are `subscribers`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.audience import optin
from newsletter.audience.optin import Signup
from newsletter.audience.subscribers import forget
from newsletter.store import Store
from newsletter.store import people as q


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Unsubscribed:
    email: str
    newsletter: str
    changed: bool  # False when they had already left: one-click is idempotent


def unsubscribe_id(
    store: Store,
    subscriber_id: int,
    newsletter: str,
    *,
    method: str = "one-click",
    now: dt.datetime | None = None,
) -> Unsubscribed | None:
    """Unsubscribe by the id a signed link carries; None if the subscriber no longer exists."""
    now = now or _now()
    with store.begin() as conn:
        found = q.status_of(conn, subscriber_id, newsletter)
        if found is None:
            return None
        email, email_hash, status = found
        if status is None or status == "unsubscribed":
            return Unsubscribed(email, newsletter, changed=False)
        q.set_status(conn, subscriber_id, newsletter, "unsubscribed", method, now, existed=True)
        event = q.ConsentEvent(email_hash, subscriber_id, newsletter, "unsubscribed", method, now)
        q.record(conn, [event])
        return Unsubscribed(email, newsletter, changed=True)


@dataclass(frozen=True)
class Profile:
    id: int
    email: str
    name: str
    tier: str
    suppressed: str | None
    newsletters: dict[str, str]  # key → pending | subscribed | unsubscribed


def profile(store: Store, subscriber_id: int) -> Profile | None:
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        subs = q.subscriptions_of(conn, person.id)
        reason = q.suppressed(conn, [person.email_hash]).get(person.email_hash)
        return Profile(
            person.id,
            person.email,
            person.name,
            person.tier,
            reason,
            {key: sub["status"] for key, sub in subs.items()},
        )


@dataclass(frozen=True)
class Changes:
    """What a save of the preferences form did."""

    changes: dict[str, str]  # key → new status: unsubscribed, or pending (awaiting confirmation)
    signup: Signup | None  # the confirmation to mail for the newsletters added
    limited: list[str]  # added but left alone: the address had its confirmation emails today


def set_newsletters(
    store: Store,
    subscriber_id: int,
    wanted: set[str],
    offered: set[str],
    *,
    per_address: int,
    method: str = "preferences",
    now: dt.datetime | None = None,
) -> Changes | None:
    """Leave the `offered` newsletters not `wanted` at once; the `wanted` ones not yet
    subscribed nor pending become pending, with one confirmation to mail naming exactly them
    (the link may be a forwarded email's: adding is a sign-up like any other, limited alike).
    A suppressed address changes nothing. None if the subscriber no longer exists."""
    now = now or _now()
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        if q.suppressed(conn, [person.email_hash]):
            return Changes({}, None, [])
        subs = q.subscriptions_of(conn, person.id)
        was = {key: subs.get(key, {}).get("status") for key in sorted(offered)}
        leaving = [k for k, s in was.items() if k not in wanted and s in ("subscribed", "pending")]
        adding = [k for k, s in was.items() if k in wanted and s not in ("subscribed", "pending")]
        q.unsubscribe(conn, person.id, person.email_hash, leaving, method, now)
        changes = dict.fromkeys(leaving, "unsubscribed")
        if adding and optin.over_limit(conn, person.email_hash, per_address, now):
            return Changes(changes, None, adding)
        optin.make_pending(conn, person, subs, adding, method, now)
        changes.update(dict.fromkeys(adding, "pending"))
        signup = Signup(person.id, person.email, adding) if adding else None
        return Changes(changes, signup, [])


def data_of(store: Store, subscriber_id: int) -> dict[str, Any] | None:
    """Everything the store holds on one subscriber (the right of access), as JSON values:
    only for the holder of a data link (mailed to the address, for a download)."""
    from newsletter.store import events as eq

    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        reason = q.suppressed(conn, [person.email_hash]).get(person.email_hash)

        def iso(value: Any) -> Any:
            return value.isoformat() if isinstance(value, dt.datetime) else value

        return {
            "subscriber": {
                "email": person.email,
                "name": person.name,
                "tier": person.tier,
                "source": person.source,
                "attributes": person.attributes,
                "created_at": iso(person.created_at),
                "updated_at": iso(person.updated_at),
                "suppressed": reason,
            },
            "subscriptions": [
                {k: iso(v) for k, v in sub.items() if k != "subscriber_id"}
                for _, sub in sorted(q.subscriptions_of(conn, person.id).items())
            ],
            "consent_history": [
                {k: iso(v) for k, v in e.items() if k not in ("id", "email_hash", "subscriber_id")}
                for e in q.history(conn, person.email_hash)
            ],
            "messages": [
                {k: iso(v) for k, v in row.items()} for row in eq.journal_of(conn, person.id)
            ],
            "delivery_events": [
                {k: iso(v) for k, v in row.items()} for row in eq.events_of(conn, person.id)
            ],
        }


def forget_id(
    store: Store, subscriber_id: int, *, method: str = "preferences", outbox: Path | None = None
) -> bool:
    """`forget` for the holder of a data link (mailed to the address, for erasure); their
    outbox files go too."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
    if person is None:
        return False
    return forget(store, person.email, method=method, outbox=outbox).deleted
