"""Queries on what the publisher's systems hold: API keys (by the hash of the key) and the
idempotency records of their POSTs.

Both live in the database, not in one process's memory, so that a key revoked from the CLI
is refused at once by every running `serve`, and a retried POST is replayed by whichever
worker or machine it reaches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.store.schema import api_keys, idempotency_keys


@dataclass(frozen=True)
class KeyRow:
    id: int
    name: str
    key_hash: str
    prefix: str
    scopes: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def insert_key(
    conn: Connection, name: str, key_hash: str, prefix: str, scopes: str, now: dt.datetime
) -> bool:
    """False if a key of that name exists already (revoked or not: a name means one key in
    the consent history)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(api_keys).values(
                    name=name, key_hash=key_hash, prefix=prefix, scopes=scopes, created_at=now
                )
            )
    except IntegrityError:
        return False
    return True


# built once: this runs on every API request, and building a statement costs more than
# running it
_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("h"))
_TOUCH = update(api_keys).where(api_keys.c.id == bindparam("i")).values(last_used_at=bindparam("t"))


def key_by_hash(conn: Connection, key_hash: str) -> KeyRow | None:
    """One index lookup (the unique index on key_hash), never a scan."""
    row = conn.execute(_BY_HASH, {"h": key_hash}).first()
    return KeyRow(**row._mapping) if row else None


def key_by_name(conn: Connection, name: str) -> KeyRow | None:
    row = conn.execute(select(api_keys).where(api_keys.c.name == name)).first()
    return KeyRow(**row._mapping) if row else None


def all_keys(conn: Connection) -> list[KeyRow]:
    return [KeyRow(**r._mapping) for r in conn.execute(select(api_keys).order_by(api_keys.c.name))]


def revoke_key(conn: Connection, key_id: int, now: dt.datetime) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))


def touch_key(conn: Connection, key_id: int, now: dt.datetime) -> None:
    conn.execute(_TOUCH, {"i": key_id, "t": now})


@dataclass(frozen=True)
class Answer:
    """A POST's first answer, kept under its idempotency key."""

    request_hash: str
    status: int
    body: str
    created_at: dt.datetime


def answer(conn: Connection, key_id: int, idempotency_key: str) -> Answer | None:
    c = idempotency_keys.c
    row = conn.execute(
        select(c.request_hash, c.status, c.body, c.created_at).where(
            c.key_id == key_id, c.idempotency_key == idempotency_key
        )
    ).first()
    return Answer(row.request_hash, row.status, row.body, row.created_at) if row else None


def forget_answer(conn: Connection, key_id: int, idempotency_key: str) -> None:
    c = idempotency_keys.c
    conn.execute(
        delete(idempotency_keys).where(c.key_id == key_id, c.idempotency_key == idempotency_key)
    )


def keep_answer(
    conn: Connection,
    key_id: int,
    idempotency_key: str,
    given: Answer,
) -> bool:
    """False if another transaction kept an answer under this key first (two workers got
    the same retry at once): the caller rolls back and replays that answer."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(idempotency_keys).values(
                    key_id=key_id,
                    idempotency_key=idempotency_key,
                    request_hash=given.request_hash,
                    status=given.status,
                    body=given.body,
                    created_at=given.created_at,
                )
            )
    except IntegrityError:
        return False
    return True
