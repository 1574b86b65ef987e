"""Double opt-in: a sign-up (the form, or a newsletter added on the preferences page) makes
pending subscriptions and a confirmation email; only the confirmation (a POST from the
emailed link's page) makes them subscribed, and only those that email named.

What a sign-up never does, whatever the address: tell the visitor whether it was known
(the web page is the same in every case), mail a suppressed address, mail one address more
than `per_address` times a day, or downgrade an existing subscription to pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.audience import addresses
from newsletter.audience.subscribers import create
from newsletter.errors import SubscriberError
from newsletter.store import Connection, Store
from newsletter.store import people as q

METHOD = "web"
# the methods whose pending requests count toward the per-address limit: the form's, and
# the preferences page's additions (whoever holds a forwarded email must not mail-bomb)
REQUEST_METHODS = (METHOD, "preferences")


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
        person = q.by_key(conn, address.key)
        subs = q.subscriptions_of(conn, person.id) if person else {}
        wanted = [
            k for k in dict.fromkeys(newsletters) if subs.get(k, {}).get("status") != "subscribed"
        ]
        if not wanted or over_limit(conn, address.hash, per_address, now):
            return None
        if person is None:
            person = create(conn, address, "", "free", METHOD, now)
        make_pending(conn, person, subs, wanted, METHOD, now)
        return Signup(person.id, person.email, wanted)


def over_limit(conn: Connection, email_hash: str, per_address: int, now: dt.datetime) -> bool:
    """Has this address had `per_address` confirmation requests in the last day?"""
    since = now - dt.timedelta(days=1)
    recent = sum(q.requests_since(conn, email_hash, m, since) for m in REQUEST_METHODS)
    return recent >= per_address


def make_pending(
    conn: Connection,
    person: q.SubscriberRow,
    subs: dict[str, dict[str, Any]],
    keys: list[str],
    method: str,
    now: dt.datetime,
) -> None:
    """`keys` become pending, each with its consent event (what the limit counts)."""
    for key in keys:
        q.set_status(conn, person.id, key, "pending", method, now, existed=key in subs)
    q.record(
        conn,
        [
            q.ConsentEvent(
                person.email_hash, person.id, key, "pending", method, now, "confirmation emailed"
            )
            for key in keys
        ],
    )


@dataclass(frozen=True)
class Confirmed:
    email: str
    newsletters: list[str]  # confirmed now
    suppressed: bool


def confirm(
    store: Store, subscriber_id: int, newsletters: Sequence[str], *, now: dt.datetime
) -> Confirmed | None:
    """The pending subscriptions among `newsletters` (those the confirmation email named)
    become subscribed (idempotent); any other pending one stays pending, since this email
    never asked about it (someone else may have added it since). None if the subscriber no
    longer exists (erased since)."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
        if person is None:
            return None
        if q.suppressed(conn, [person.email_hash]):
            return Confirmed(person.email, [], suppressed=True)
        subs = q.subscriptions_of(conn, person.id)
        named = set(newsletters)
        pending = sorted(k for k, s in subs.items() if s["status"] == "pending" and k in named)
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
