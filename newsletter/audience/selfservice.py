"""What a subscriber does by link, with the id a signed token carries (never an address):
one-click unsubscribe, their preferences, their data (the right of access), erasure.

The link proves the mailbox, so none of this asks for a second confirmation. (The editor's
commands on the same lists are `subscribers`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        was = q.subscriptions_of(conn, person.id).get(newsletter)
        if was is None or was["status"] == "unsubscribed":
            return Unsubscribed(person.email, newsletter, changed=False)
        q.set_status(conn, person.id, newsletter, "unsubscribed", method, now, existed=True)
        event = q.ConsentEvent(
            person.email_hash, person.id, newsletter, "unsubscribed", method, now
        )
        q.record(conn, [event])
        return Unsubscribed(person.email, newsletter, changed=True)


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


def set_newsletters(
    store: Store,
    subscriber_id: int,
    wanted: set[str],
    offered: set[str],
    *,
    method: str = "preferences",
    now: dt.datetime | None = None,
) -> dict[str, str] | None:
    """Subscribe to the `wanted` newsletters among `offered`, unsubscribe from the rest. The
    link proves the mailbox, so no second confirmation; a suppressed address changes nothing.
    Returns the changes (key → new status), None if the subscriber no longer exists."""
    now = now or _now()
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        if q.suppressed(conn, [person.email_hash]):
            return {}
        subs = q.subscriptions_of(conn, person.id)
        changes: dict[str, str] = {}
        for key in sorted(offered):
            was = subs.get(key, {}).get("status")
            new = "subscribed" if key in wanted else "unsubscribed"
            if was == new or (was is None and new == "unsubscribed"):
                continue
            q.set_status(conn, person.id, key, new, method, now, existed=was is not None)
            changes[key] = new
        q.record(
            conn,
            [
                q.ConsentEvent(person.email_hash, person.id, key, status, method, now)
                for key, status in changes.items()
            ],
        )
        return changes


def data_of(store: Store, subscriber_id: int) -> dict[str, Any] | None:
    """Everything the store holds on one subscriber (the right of access), as JSON values."""
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
    """`forget` for the holder of a preferences link (their outbox files go too)."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
    if person is None:
        return False
    return forget(store, person.email, method=method, outbox=outbox).deleted
