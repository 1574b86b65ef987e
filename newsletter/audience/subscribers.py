"""The list rules for single subscribers and whole lists: add, remove, forget, list, export, stats.

(Importing a CSV file is `importer`.) The suppression list always wins: a suppressed address
is never added, and it stays suppressed after `forget`, by the hash of its key.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.audience import addresses
from newsletter.audience.csvformat import neutralise
from newsletter.build.output import atomic_text
from newsletter.errors import SubscriberError
from newsletter.store import Store
from newsletter.store import people as q

EXPORT_COLUMNS = [
    "email",
    "name",
    "tier",
    "newsletter",
    "status",
    "suppressed",
    "source",
    "created_at",
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _address(email: str) -> addresses.Address:
    try:
        return addresses.parse(email)
    except addresses.InvalidAddress as exc:
        raise SubscriberError(f"'{email}' is not a valid address: {exc}") from None


def add(
    store: Store,
    email: str,
    newsletter: str,
    *,
    name: str | None = None,
    tier: str | None = None,
    method: str = "command",
    now: dt.datetime | None = None,
) -> str:
    """Subscribe `email` to `newsletter` (an editor's command: consent given elsewhere).

    Returns what happened: 'added', 'resubscribed', 'updated' or 'unchanged'."""
    now = now or _now()
    address = _address(email)
    with store.begin() as conn:
        reason = q.suppressed(conn, [address.hash]).get(address.hash)
        if reason:
            raise SubscriberError(f"{email} is on the suppression list ({reason}): not added")
        person = q.by_key(conn, address.key)
        if person is None:
            person = create(conn, address, name or "", tier or "free", method, now)
            result = "added"
        else:
            change = {
                k: v
                for k, v in (("name", name), ("tier", tier))
                if v is not None and getattr(person, k) != v
            }
            if change:
                q.update_subscribers(conn, [{"b_id": person.id, "updated_at": now, **change}])
            result = "updated" if change else "unchanged"
        was = q.subscriptions_of(conn, person.id).get(newsletter)
        if was is None or was["status"] != "subscribed":
            q.set_status(
                conn, person.id, newsletter, "subscribed", method, now, existed=was is not None
            )
            q.record(
                conn,
                [q.ConsentEvent(address.hash, person.id, newsletter, "subscribed", method, now)],
            )
            result = "added" if was is None else "resubscribed"
        return result


def create(
    conn: Any, address: addresses.Address, name: str, tier: str, source: str, now: dt.datetime
) -> q.SubscriberRow:
    """Insert a new subscriber (no subscription yet) inside the caller's transaction."""
    row = {
        "id": q.reserve_ids(conn, 1)[0],  # never an erased subscriber's id
        "email": address.email,
        "email_key": address.key,
        "email_hash": address.hash,
        "name": name,
        "tier": tier,
        "source": source,
        "attributes": {},
        "created_at": now,
        "updated_at": now,
    }
    q.insert_subscribers(conn, [row])
    person = q.by_key(conn, address.key)
    assert person is not None
    return person


def remove(
    store: Store,
    email: str,
    newsletter: str | None = None,
    *,
    method: str = "command",
    now: dt.datetime | None = None,
) -> list[str]:
    """Unsubscribe from one newsletter (or all); the record and its history stay.

    Returns the newsletters unsubscribed from."""
    now = now or _now()
    address = _address(email)
    with store.begin() as conn:
        person = q.by_key(conn, address.key)
        if person is None:
            raise SubscriberError(f"no subscriber {email}")
        subs = q.subscriptions_of(conn, person.id)
        if newsletter is not None and newsletter not in subs:
            raise SubscriberError(f"{email} has no subscription to {newsletter}")
        targets = [
            k
            for k, s in sorted(subs.items())
            if (newsletter in (None, k)) and s["status"] != "unsubscribed"
        ]
        for key in targets:
            q.set_status(conn, person.id, key, "unsubscribed", method, now, existed=True)
        q.record(
            conn,
            [
                q.ConsentEvent(address.hash, person.id, key, "unsubscribed", method, now)
                for key in targets
            ],
        )
        return targets


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


def forget(
    store: Store, email: str, *, method: str = "command", now: dt.datetime | None = None
) -> bool:
    """Erase: personal data deleted; the hash stays on the suppression list so that no later
    import can bring the address back. Returns whether a subscriber record was deleted."""
    now = now or _now()
    address = _address(email)
    with store.begin() as conn:
        person = q.by_key(conn, address.key)
        if person is not None:
            q.delete_subscriber(conn, person.id)
        q.suppress(conn, [q.Suppression(address.hash, "erased", method, now)])
        q.record(conn, [q.ConsentEvent(address.hash, None, None, "erased", method, now)])
        return person is not None


@dataclass
class Listed:
    email: str
    name: str
    tier: str
    suppressed: str | None
    newsletters: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "tier": self.tier,
            "suppressed": self.suppressed,
            "newsletters": self.newsletters,
        }


def listing(
    store: Store, newsletter: str | None = None, status: str | None = None
) -> Iterator[Listed]:
    """Subscribers with their statuses, in address order; status may be 'suppressed'."""
    with store.begin() as conn:
        current: Listed | None = None
        for person, key, state, reason in q.all_rows(conn):
            if current is None or current.email != person.email:
                if current is not None and _matches(current, newsletter, status):
                    yield current
                current = Listed(person.email, person.name, person.tier, reason)
            if key is not None and state is not None:
                current.newsletters[key] = state
        if current is not None and _matches(current, newsletter, status):
            yield current


def _matches(entry: Listed, newsletter: str | None, status: str | None) -> bool:
    if newsletter is not None and newsletter not in entry.newsletters:
        return False
    if status == "suppressed":
        return entry.suppressed is not None
    if status is None:
        return True
    states = [entry.newsletters[newsletter]] if newsletter else list(entry.newsletters.values())
    return status in states and entry.suppressed is None


def export(store: Store, path: Path) -> int:
    """Every subscriber with their per-newsletter status, tier and suppression, as a CSV that
    imports back into the same lists. Formula-like cells are neutralised. Returns rows written."""
    count = 0
    with store.begin() as conn, atomic_text(path) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for person, key, state, reason in q.all_rows(conn):
            cells = [
                person.email,
                person.name,
                person.tier,
                key or "",
                state or "",
                reason or "",
                person.source,
                person.created_at.isoformat(),
            ]
            writer.writerow([neutralise(c) for c in cells])
            count += 1
    return count


@dataclass(frozen=True)
class StatsRow:
    newsletter: str
    tier: str
    subscribed: int = 0
    pending: int = 0
    unsubscribed: int = 0
    suppressed: int = 0


def stats(store: Store) -> list[StatsRow]:
    """Per newsletter and tier. A suppressed subscriber counts as suppressed, not subscribed."""
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with store.begin() as conn:
        for newsletter, tier, status, is_suppressed, count in q.counts(conn):
            table[(newsletter, tier)]["suppressed" if is_suppressed else status] += count
    return [StatsRow(nl, tier, **dict(values)) for (nl, tier), values in sorted(table.items())]


# -- what a subscriber does from their own preferences page (the link's id, not an address) --


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


def forget_id(store: Store, subscriber_id: int, *, method: str = "preferences") -> bool:
    """`forget` for the holder of a preferences link."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
    if person is None:
        return False
    return forget(store, person.email, method=method)
