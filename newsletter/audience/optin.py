"""Double opt-in: a sign-up makes pending subscriptions and a confirmation email; only the
confirmation (a POST from the emailed link's page) makes them subscribed.

What a sign-up never does, whatever the address: tell the visitor whether it was known
(the web page is the same in every case), mail a suppressed address, mail one address more
than `per_address` times a day, or downgrade an existing subscription to pending.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.audience import addresses
from newsletter.audience.subscribers import create
from newsletter.errors import SubscriberError
from newsletter.store import Store
from newsletter.store import people as q

METHOD = "web"


@dataclass(frozen=True)
class Signup:
    """Someone to mail a confirmation to."""

    subscriber_id: int
    email: str
    newsletters: list[str]


def request(
    store: Store,
    email: str,
    newsletters: list[str],
    *,
    per_address: int,
    now: dt.datetime,
) -> Signup | None:
    """Record the request; a Signup when a confirmation should be mailed, else None.

    SubscriberError only for an address that is not an address at all (the visitor typed
    it: saying so reveals nothing about the list)."""
    try:
        address = addresses.parse(email)
    except addresses.InvalidAddress as exc:
        raise SubscriberError(f"'{email}' is not a valid address: {exc}") from None
    with store.begin() as conn:
        if q.suppressed(conn, address.hashes):
            return None
        recent = q.requests_since(conn, address.hash, METHOD, now - dt.timedelta(days=1))
        person = q.by_key(conn, address.key)
        subs = q.subscriptions_of(conn, person.id) if person else {}
        wanted = [
            k for k in dict.fromkeys(newsletters) if subs.get(k, {}).get("status") != "subscribed"
        ]
        if not wanted or recent >= per_address:
            return None
        if person is None:
            person = create(conn, address, "", "free", METHOD, now)
        for key in wanted:
            q.set_status(conn, person.id, key, "pending", METHOD, now, existed=key in subs)
        q.record(
            conn,
            [
                q.ConsentEvent(
                    address.hash, person.id, key, "pending", METHOD, now, "confirmation emailed"
                )
                for key in wanted
            ],
        )
        return Signup(person.id, person.email, wanted)


@dataclass(frozen=True)
class Confirmed:
    email: str
    newsletters: list[str]  # confirmed now
    suppressed: bool


def confirm(store: Store, subscriber_id: int, *, now: dt.datetime) -> Confirmed | None:
    """Every pending subscription of this subscriber becomes subscribed (idempotent).
    None if they no longer exist (erased since)."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        if q.suppressed(conn, [person.email_hash]):
            return Confirmed(person.email, [], suppressed=True)
        subs = q.subscriptions_of(conn, person.id)
        pending = sorted(k for k, s in subs.items() if s["status"] == "pending")
        for key in pending:
            q.set_status(conn, person.id, key, "subscribed", "double-opt-in", now, existed=True)
        q.record(
            conn,
            [
                q.ConsentEvent(
                    person.email_hash,
                    person.id,
                    key,
                    "subscribed",
                    "double-opt-in",
                    now,
                    "confirmed from the emailed link",
                )
                for key in pending
            ],
        )
        return Confirmed(person.email, pending, suppressed=False)
