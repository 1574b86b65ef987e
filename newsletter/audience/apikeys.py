"""API keys for the publisher's systems: made once, stored only as a hash, found per request
by that hash's index, compared in constant time, revoked at once.

A key is `nlk_` and 32 random bytes in URL-safe base64: the prefix makes a leaked key easy
to recognise (in a log, a repository, a secret scanner). Only its SHA-256 is stored, so a
copy of the database gives no working key. A scope names what a key may do; a key has
the scopes it was made with, and no scope includes another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from newsletter.errors import ApiKeyError
from newsletter.store import Connection, Store
from newsletter.store import access as q

PREFIX = "nlk_"
RANDOM_BYTES = 32
SCOPES = {
    "subscribers:read": "read subscribers, their tier, statuses and suppression",
    "subscribers:write": "add subscribers (double opt-in), change their tier, name and "
    "subscriptions, unsubscribe and erase them",
    "subscribers:confirm": "add subscriptions as already confirmed (a logged-in reader)",
    "stats:read": "read an issue's figures",
}
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,27}")  # "api:<name>" fits the history's method
TOUCH_EVERY = dt.timedelta(minutes=1)  # last use is written at most this often per key


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    scopes: frozenset[str]
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def method(self) -> str:
        """How the consent history names what this key did."""
        return f"api:{self.name}"

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def _of(row: q.KeyRow) -> ApiKey:
    return ApiKey(
        row.id,
        row.name,
        frozenset(row.scopes.split()),
        row.prefix,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ApiKeyError(f"unknown scope {', '.join(unknown)}: the scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise ApiKeyError(f"give at least one --scope ({', '.join(SCOPES)})")
    return sorted(set(scopes))


def create(store: Store, name: str, scopes: list[str], *, now: dt.datetime) -> tuple[ApiKey, str]:
    """A new key: (its record, the key itself, which is never seen again)."""
    if not NAME_RE.fullmatch(name):
        raise ApiKeyError(
            f"'{name}' is not a key name: 1 to 28 lowercase letters, digits, '.', '_' or '-'"
        )
    chosen = check_scopes(scopes)
    key = PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    prefix = key[: len(PREFIX) + 4]
    with store.begin() as conn:
        if not q.insert_key(conn, name, digest(key), prefix, " ".join(chosen), now):
            raise ApiKeyError(f"there is already a key named {name} (names are never reused)")
        row = q.key_by_name(conn, name)
    assert row is not None
    return _of(row), key


def listing(store: Store) -> list[ApiKey]:
    with store.begin() as conn:
        return [_of(r) for r in q.all_keys(conn)]


def revoke(store: Store, name: str, *, now: dt.datetime) -> ApiKey:
    """Effective at the next request, in every running service (they look keys up in the
    database on every request)."""
    with store.begin() as conn:
        row = q.key_by_name(conn, name)
        if row is None:
            raise ApiKeyError(f"no key named {name}")
        if row.revoked_at is None:
            q.revoke_key(conn, row.id, now)
        found = q.key_by_name(conn, name)
    assert found is not None
    return _of(found)


def lookup(store: Store, presented: str, *, now: dt.datetime) -> ApiKey | None:
    """The live key `presented` is, or None (unknown, malformed or revoked).

    The row is found by the hash's index; the stored hash is then compared with
    `hmac.compare_digest`, so no answer's timing depends on how much of a guess was right."""
    with store.begin() as conn:
        return lookup_in(conn, presented, now=now)


def lookup_in(conn: Connection, presented: str, *, now: dt.datetime) -> ApiKey | None:
    """`lookup` in the caller's transaction (with the request's own work: one transaction
    a request)."""
    if not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    wanted = digest(presented)
    row = q.key_by_hash(conn, wanted)
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    if row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        q.touch_key(conn, row.id, now)
    return _of(row)
