"""Addresses match case-insensitively in the local part too: every stored key and hash is
recomputed from the stored address's key by `model.key_of` (the one rule).

Subscribers whose addresses now have one key (`Zoe.Kwan@…`, `zoe.kwan@…`) are merged, the
safe way: nothing a reader asked for and nothing that blocks an address is lost.
- The oldest subscriber (first created, then lowest id) is kept, with its address as given,
  name, tier and attributes; the others are deleted (their ids are never handed out again).
- Their subscriptions move to the one kept; where both have one to the same newsletter, the
  one changed last wins (the reader's latest wish, a later unsubscribe included).
- Their consent history moves to the one kept, and each merge adds an event (action
  'merged', method 'migration', naming the ids, never the address); a warning names them too.
- Every suppression stays. One of any of the merged addresses is copied to the new hash,
  so it holds for every spelling. A suppression of an address no longer stored (an erasure)
  cannot be re-keyed: it keeps its old hash, which `Address.hashes` still matches.
- The consent history and the delivery events of a re-keyed address get the new hash.
The send journal is left alone: it names readers by id.

Revision ID: 0006
Revises: 0005
"""

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_events = sa.table(
    "consent_events",
    sa.column("email_hash", sa.String),
    sa.column("subscriber_id", sa.Integer),
    sa.column("newsletter", sa.String),
    sa.column("action", sa.String),
    sa.column("method", sa.String),
    sa.column("detail", sa.Text),
    sa.column("at", UtcDateTime),
)


def upgrade() -> None:
    # the live rule, not a copy: a key is what `addresses` says it is
    from newsletter.model import hash_key, key_of

    conn = op.get_bind()
    groups: dict[str, list[Any]] = defaultdict(list)
    query = "SELECT id, email_key, email_hash, created_at FROM subscribers ORDER BY id"
    for row in conn.execute(sa.text(query)):
        groups[key_of(row.email_key)].append(row)
    now = dt.datetime.now(dt.UTC)
    for key, rows in groups.items():
        if len(rows) == 1 and rows[0].email_key == key:
            continue
        rows.sort(key=lambda r: (r.created_at, r.id))
        keeper, others = rows[0], rows[1:]
        for other in others:
            _merge(conn, keeper.id, other.id)
        new_hash = hash_key(key)
        old_hashes = sorted({r.email_hash for r in rows} - {new_hash})
        if old_hashes:
            _rehash(conn, old_hashes, new_hash)
        conn.execute(
            sa.text("UPDATE subscribers SET email_key = :key, email_hash = :hash WHERE id = :id"),
            {"key": key, "hash": new_hash, "id": keeper.id},
        )
        if others:
            ids = ", ".join(f"#{o.id}" for o in others)
            log.warning(
                "subscribers %s merged into #%s: one address in another case", ids, keeper.id
            )
            conn.execute(
                sa.insert(_events),
                [
                    {
                        "email_hash": new_hash,
                        "subscriber_id": keeper.id,
                        "newsletter": None,
                        "action": "merged",
                        "method": "migration",
                        "detail": f"subscriber #{o.id} merged into #{keeper.id}: "
                        "their addresses differ only in case",
                        "at": now,
                    }
                    for o in others
                ],
            )


def _merge(conn: sa.Connection, keeper: int, other: int) -> None:
    """`other`'s subscriptions and consent history to `keeper`; then `other` goes."""
    query = sa.text(
        "SELECT newsletter, status, method, created_at, updated_at, subscribed_at, "
        "unsubscribed_at FROM subscriptions WHERE subscriber_id = :id"
    )
    kept = {r.newsletter: r for r in conn.execute(query, {"id": keeper})}
    for sub in conn.execute(query, {"id": other}).all():
        mine = kept.get(sub.newsletter)
        ids = {"keeper": keeper, "other": other, "newsletter": sub.newsletter}
        if mine is None:
            conn.execute(
                sa.text(
                    "UPDATE subscriptions SET subscriber_id = :keeper "
                    "WHERE subscriber_id = :other AND newsletter = :newsletter"
                ),
                ids,
            )
            continue
        if sub.updated_at > mine.updated_at:  # the later wish wins
            conn.execute(
                sa.text(
                    "UPDATE subscriptions SET status = :status, method = :method, "
                    "updated_at = :updated_at, subscribed_at = :subscribed_at, "
                    "unsubscribed_at = :unsubscribed_at "
                    "WHERE subscriber_id = :keeper AND newsletter = :newsletter"
                ),
                {**sub._mapping, **ids},
            )
        if sub.created_at < mine.created_at:
            conn.execute(
                sa.text(
                    "UPDATE subscriptions SET created_at = :created_at "
                    "WHERE subscriber_id = :keeper AND newsletter = :newsletter"
                ),
                {"created_at": sub.created_at, **ids},
            )
        conn.execute(
            sa.text(
                "DELETE FROM subscriptions "
                "WHERE subscriber_id = :other AND newsletter = :newsletter"
            ),
            ids,
        )
    conn.execute(
        sa.text("UPDATE consent_events SET subscriber_id = :keeper WHERE subscriber_id = :other"),
        {"keeper": keeper, "other": other},
    )
    conn.execute(sa.text("DELETE FROM subscribers WHERE id = :other"), {"other": other})


def _rehash(conn: sa.Connection, old: list[str], new: str) -> None:
    """The address's history and events under its new hash; its suppression (the first, if
    several spellings had one) copied to the new hash, the old rows kept."""
    params = {"old": old, "new": new}
    expanding: sa.BindParameter[list[str]] = sa.bindparam("old", expanding=True)
    for table in ("consent_events", "delivery_events"):
        statement = sa.text(f"UPDATE {table} SET email_hash = :new WHERE email_hash IN :old")
        conn.execute(statement.bindparams(expanding), params)
    held = sa.text("SELECT 1 FROM suppressions WHERE email_hash = :new")
    if conn.execute(held, params).first() is None:
        first = sa.text(
            "SELECT reason, source, created_at FROM suppressions WHERE email_hash IN :old "
            "ORDER BY created_at, email_hash"
        )
        row = conn.execute(first.bindparams(expanding), params).first()
        if row is not None:
            conn.execute(
                sa.text(
                    "INSERT INTO suppressions (email_hash, reason, source, created_at) "
                    "VALUES (:new, :reason, :source, :created_at)"
                ),
                {"new": new, **row._mapping},
            )


def downgrade() -> None:
    raise NotImplementedError("merged subscribers cannot be told apart again")
