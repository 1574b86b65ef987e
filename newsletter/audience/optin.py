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
API_METHODS = "api:%"  # every API key's requests (a LIKE pattern)


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
        return request_in(conn, address, newsletters, per_address=per_address, now=now).signup


@dataclass(frozen=True)
class Requested:
    """What a sign-up request did: `signup` to mail, or why nothing is mailed (`outcome`:
    mailed, suppressed, subscribed (already, to every one asked for) or limited)."""

    signup: Signup | None
    outcome: str
    created: bool = False


def request_in(
    conn: Connection,
    address: addresses.Address,
    newsletters: list[str],
    *,
    per_address: int,
    now: dt.datetime,
    method: str = METHOD,
    name: str = "",
    tier: str = "free",
    source: str | None = None,
) -> Requested:
    """The one double opt-in step, inside the caller's transaction: the form's and the API's
    (`method` "api:<key>"), so both keep the same rules and the same per-address limit."""
    if q.suppressed(conn, address.hashes):
        return Requested(None, "suppressed")
    person = q.by_key(conn, address.key)
    subs = q.subscriptions_of(conn, person.id) if person else {}
    wanted = [
        k for k in dict.fromkeys(newsletters) if subs.get(k, {}).get("status") != "subscribed"
    ]
    if not wanted:
        return Requested(None, "subscribed")
    if over_limit(conn, address.hash, per_address, now):
        return Requested(None, "limited")
    created = person is None
    if person is None:
        person = create(conn, address, name, tier, source or method, now)
    make_pending(conn, person, subs, wanted, method, now)
    return Requested(Signup(person.id, person.email, wanted), "mailed", created)


def over_limit(conn: Connection, email_hash: str, per_address: int, now: dt.datetime) -> bool:
    """Has this address had `per_address` confirmation requests in the last day (the form's,
    the preferences page's and the API's together)?"""
    since = now - dt.timedelta(days=1)
    recent = sum(q.requests_since(conn, email_hash, m, since) for m in REQUEST_METHODS)
    recent += q.requests_since(conn, email_hash, API_METHODS, since)
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
        q.change_status(
            conn,
            person.id,
            person.email_hash,
            pending,
            "subscribed",
            "double-opt-in",
            now,
            "confirmed from the emailed link",
        )
        return Confirmed(person.email, pending, suppressed=False)
