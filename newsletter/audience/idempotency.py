"""A POST under an `Idempotency-Key`: its first answer is kept in the database, in the same
transaction as its changes, and a retry with the same key and body gets that answer back
and changes nothing; the same key with another body is refused. Kept a day.

In the database, not in a process's memory, so it holds across workers and machines: two
workers that get one retry at once both try to keep their answer; the second one's insert
fails on the key, its transaction (its changes too) is rolled back, and it replays the
first one's answer."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from newsletter.errors import ApiRefused
from newsletter.store import Connection, Store
from newsletter.store import access as q

KEEP = dt.timedelta(hours=24)
T = TypeVar("T")


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True)
class Outcome(Generic[T]):
    status: int
    body: str
    replayed: bool
    extra: T | None  # what the first run returned besides its answer (None on a replay)


class _Raced(Exception):
    """Another transaction kept an answer under this key first."""


def once(
    store: Store,
    key_id: int,
    idempotency_key: str,
    fingerprint: str,
    work: Callable[[Connection], tuple[int, str, T]],
    *,
    now: dt.datetime,
) -> Outcome[T]:
    """Run `work` (status, body, extra) once per (key, idempotency key)."""
    for _ in range(3):
        try:
            with store.begin() as conn:
                found = q.answer(conn, key_id, idempotency_key)
                if found is not None and now - found.created_at < KEEP:
                    if found.request_hash != fingerprint:
                        raise ApiRefused(
                            "idempotency_mismatch",
                            "this Idempotency-Key was used for another request: "
                            "use a new key for a new request",
                            "Idempotency-Key",
                        )
                    return Outcome(found.status, found.body, True, None)
                if found is not None:
                    q.forget_answer(conn, key_id, idempotency_key)
                status, body, extra = work(conn)
                kept = q.Answer(fingerprint, status, body, now)
                if not q.keep_answer(conn, key_id, idempotency_key, kept):
                    raise _Raced
                return Outcome(status, body, False, extra)
        except _Raced:
            continue
    raise ApiRefused("conflict", "this request is being answered by another worker: retry")
