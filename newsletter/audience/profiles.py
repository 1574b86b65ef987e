"""A subscriber as the publisher's systems see them (the HTTP API): found by id or address,
paged by changes, added (double opt-in, or confirmed by the caller), changed, erased.

Every change writes the consent history with the method `api:<key name>`; a tier change is
a line of it too (action `tier`), as is `subscribers sync`'s. The double opt-in is
`optin.request_in`, the sign-up form's own step: same pending subscriptions, same email,
same per-address limit. A suppressed address is never subscribed, and an unsubscribed one
only when the caller says `resubscribe`, and only to the newsletters it names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.audience import addresses, optin
from newsletter.audience.subscribers import create, forget
from newsletter.errors import ApiRefused
from newsletter.model import NAME_MAX, Tier
from newsletter.store import Connection, Store
from newsletter.store import people as q

PAGE_MAX = 1000
TIERS = tuple(t.value for t in Tier)


@dataclass(frozen=True)
class Profile:
    id: int
    email: str
    name: str
    tier: str
    source: str
    created_at: dt.datetime
    updated_at: dt.datetime
    suppressed: str | None  # the reason, if the address is on the suppression list
    newsletters: dict[str, str] = field(default_factory=dict)  # newsletter → status

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "tier": self.tier,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "suppressed": self.suppressed,
            "newsletters": dict(sorted(self.newsletters.items())),
        }


def _profiles(conn: Connection, people: list[q.SubscriberRow]) -> list[Profile]:
    statuses = q.statuses(conn, [p.id for p in people])
    reasons = q.suppressed(conn, [p.email_hash for p in people])
    return [
        Profile(
            p.id,
            p.email,
            p.name,
            p.tier,
            p.source,
            p.created_at,
            p.updated_at,
            reasons.get(p.email_hash),
            {nl: st for (sid, nl), st in statuses.items() if sid == p.id},
        )
        for p in people
    ]


def _profile(found: tuple[q.SubscriberRow, dict[str, str], str | None] | None) -> Profile | None:
    if found is None:
        return None
    p, statuses, reason = found
    return Profile(
        p.id, p.email, p.name, p.tier, p.source, p.created_at, p.updated_at, reason, statuses
    )


def profile_in(conn: Connection, subscriber_id: int) -> Profile | None:
    """One query (a request's hot path)."""
    return _profile(q.profile_row(conn, subscriber_id=subscriber_id))


def get(store: Store, subscriber_id: int) -> Profile | None:
    with store.begin() as conn:
        return profile_in(conn, subscriber_id)


def parse_address(email: str, field_name: str = "email") -> addresses.Address:
    try:
        return addresses.parse(email)
    except addresses.InvalidAddress as exc:
        message = f"'{email}' is not a valid address: {exc}"
        raise ApiRefused("invalid", message, field_name) from None


def find_in(conn: Connection, email: str) -> Profile | None:
    """By the normalised address (its key): `Zoe@Example.com` finds `zoe@example.com`."""
    return _profile(q.profile_row(conn, key=parse_address(email).key))


def find(store: Store, email: str) -> Profile | None:
    with store.begin() as conn:
        return find_in(conn, email)


def page(
    store: Store,
    *,
    after: int = 0,
    limit: int = 100,
    newsletter: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
) -> tuple[list[Profile], int | None]:
    """One page in id order, and the id to continue after (None: the last page)."""
    limit = max(1, min(limit, PAGE_MAX))
    with store.begin() as conn:
        ids = q.changed_page(
            conn, after=after, limit=limit + 1, newsletter=newsletter, status=status, since=since
        )
        more = len(ids) > limit
        ids = ids[:limit]
        found = _profiles(conn, q.by_ids(conn, ids))
    return found, (ids[-1] if more and ids else None)


def set_tier(
    conn: Connection,
    person: q.SubscriberRow,
    tier: str,
    method: str,
    now: dt.datetime,
    detail: str = "",
) -> bool:
    """Change a subscriber's tier, with its line of consent history; False if unchanged.
    A send already started keeps the tier it fixed for them (the send journal's)."""
    if person.tier == tier:
        return False
    q.update_subscribers(conn, [{"b_id": person.id, "tier": tier, "updated_at": now}])
    what = f"{person.tier} → {tier}" + (f" ({detail})" if detail else "")
    q.record(conn, [q.ConsentEvent(person.email_hash, person.id, None, "tier", method, now, what)])
    return True


def _change(
    conn: Connection,
    person: q.SubscriberRow,
    name: str | None,
    tier: str | None,
    method: str,
    now: dt.datetime,
) -> None:
    if name is not None and len(name) > NAME_MAX:
        raise ApiRefused("invalid", f"the name is {len(name)} characters: over {NAME_MAX}", "name")
    if tier is not None:
        set_tier(conn, person, tier, method, now)
    if name is not None and name != person.name:
        q.update_subscribers(conn, [{"b_id": person.id, "name": name, "updated_at": now}])


@dataclass(frozen=True)
class SignupRequest:
    email: str
    newsletters: list[str]
    name: str | None = None
    tier: str | None = None
    confirmed: bool = False
    resubscribe: bool = False
    source: str | None = None


@dataclass(frozen=True)
class Subscribed:
    profile: Profile
    created: bool
    signup: optin.Signup | None  # a confirmation email to send, after the commit


def subscribe_in(
    conn: Connection,
    wanted: SignupRequest,
    *,
    method: str,
    per_address: int,
    now: dt.datetime,
) -> Subscribed:
    """Add or update a subscriber and their subscriptions, in the caller's transaction.
    ApiRefused: suppressed, unsubscribed (without resubscribe), limited (the per-address
    limit of confirmation emails), invalid."""
    address = parse_address(wanted.email)
    if wanted.name is not None and len(wanted.name) > NAME_MAX:
        raise ApiRefused(
            "invalid", f"the name is {len(wanted.name)} characters: over {NAME_MAX}", "name"
        )
    if q.suppressed(conn, address.hashes):
        raise ApiRefused(
            "suppressed", "this address is on the suppression list: it is never subscribed"
        )
    person = q.by_key(conn, address.key)
    subs = q.subscriptions_of(conn, person.id) if person else {}
    named = list(dict.fromkeys(wanted.newsletters))
    left = [k for k in named if subs.get(k, {}).get("status") == "unsubscribed"]
    if left and not wanted.resubscribe:
        raise ApiRefused(
            "unsubscribed",
            f"this address unsubscribed from {', '.join(left)}: "
            'send "resubscribe": true to subscribe it again (to the newsletters named only)',
            "resubscribe",
        )
    detail = f"source: {wanted.source}" if wanted.source else ""
    created = person is None
    if person is not None:
        _change(conn, person, wanted.name, wanted.tier, method, now)
    signup = None
    if wanted.confirmed:
        if person is None:
            tier = wanted.tier or "free"
            person = create(conn, address, wanted.name or "", tier, wanted.source or method, now)
        adding = [k for k in named if subs.get(k, {}).get("status") != "subscribed"]
        why = "confirmed by the caller" + (f"; {detail}" if detail else "")
        q.change_status(
            conn, person.id, address.hash, adding, "subscribed", method, now, why, existing=subs
        )
        person_id = person.id
    else:
        asked = optin.request_in(
            conn,
            address,
            named,
            per_address=per_address,
            now=now,
            method=method,
            name=wanted.name or "",
            tier=wanted.tier or "free",
            source=wanted.source,
        )
        if asked.outcome == "limited":
            raise ApiRefused(
                "limited",
                f"this address was sent {per_address} confirmation emails in the last day "
                "(the sign-up form's limit): try again tomorrow",
            )
        signup = asked.signup
        # request_in reads the address again: on PostgreSQL another worker's new row may be
        # visible by then (READ COMMITTED), and this request did not create it
        created = asked.created
        if person is not None:
            person_id = person.id
        else:
            assert signup is not None
            person_id = signup.subscriber_id
    found = profile_in(conn, person_id)
    assert found is not None
    return Subscribed(found, created, signup)


def patch_in(
    conn: Connection,
    subscriber_id: int,
    *,
    method: str,
    now: dt.datetime,
    tier: str | None = None,
    name: str | None = None,
    newsletters: Mapping[str, str] | None = None,
) -> Profile | None:
    """Change a subscriber in the caller's transaction (the API's idempotency key is written
    in the same one): one read, then only the writes it needs. None if there is no such
    subscriber. `newsletters`: key → subscribed | unsubscribed (subscribed means the caller
    vouches for the consent)."""
    found = q.profile_row(conn, subscriber_id=subscriber_id)
    if found is None:
        return None
    person, statuses, reason = found
    changes = dict(newsletters or {})
    if "subscribed" in changes.values() and reason is not None:
        raise ApiRefused(
            "suppressed", "this address is on the suppression list: it is never subscribed"
        )
    _change(conn, person, name, tier, method, now)
    adding = [
        k
        for k, v in sorted(changes.items())
        if v == "subscribed" and statuses.get(k) != "subscribed"
    ]
    q.change_status(
        conn,
        person.id,
        person.email_hash,
        adding,
        "subscribed",
        method,
        now,
        "set by the caller",
        existing=statuses,
    )
    leaving = [
        k
        for k, v in sorted(changes.items())
        if v == "unsubscribed" and statuses.get(k) in ("subscribed", "pending")
    ]
    q.unsubscribe(conn, person.id, person.email_hash, leaving, method, now)
    if not (
        adding or leaving or (tier not in (None, person.tier)) or name not in (None, person.name)
    ):
        return _profile(found)  # nothing changed: no second read
    return profile_in(conn, subscriber_id)


def erase(store: Store, subscriber_id: int, *, outbox: Path, method: str, now: dt.datetime) -> bool:
    """`subscribers forget`, by id: False if there is no such subscriber."""
    with store.begin() as conn:
        person = q.by_id(conn, subscriber_id)
    if person is None:
        return False
    forget(store, person.email, outbox=outbox, method=method, now=now)
    return True
