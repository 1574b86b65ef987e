"""The people queries the one-click path leans on: one subscription's status in one
statement, and bulk_insert's statements kept per table and column set."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from newsletter.audience.addresses import parse
from newsletter.audience.subscribers import add
from newsletter.store import Store
from newsletter.store import people as q
from newsletter.store.schema import suppressions

NOW = dt.datetime(2025, 5, 14, 6, 0, tzinfo=dt.UTC)


def test_status_of_names_the_address_and_that_subscriptions_status(store: Store) -> None:
    add(store, "Jane@Example.com", "daily")
    with store.begin() as conn:
        jane = q.by_key(conn, parse("Jane@Example.com").key)
        assert jane is not None
        assert q.status_of(conn, jane.id, "daily") == (
            "Jane@Example.com",
            jane.email_hash,
            "subscribed",
        )
        assert q.status_of(conn, jane.id, "weekly") == ("Jane@Example.com", jane.email_hash, None)
        assert q.status_of(conn, jane.id + 1, "daily") is None
        q.set_status(conn, jane.id, "daily", "unsubscribed", "one-click", NOW, existed=True)
        assert q.status_of(conn, jane.id, "daily") == (
            "Jane@Example.com",
            jane.email_hash,
            "unsubscribed",
        )


def test_bulk_insert_keeps_one_statement_per_set_of_columns(store: Store) -> None:
    with store.begin() as conn:
        q.bulk_insert(
            conn,
            suppressions,
            [{"email_hash": "a" * 64, "reason": "bounce", "source": "smtp", "created_at": NOW}],
        )
        q.bulk_insert(  # no source: the column's default, not the last statement's columns
            conn, suppressions, [{"email_hash": "b" * 64, "reason": "manual", "created_at": NOW}]
        )
        rows = conn.execute(select(suppressions).order_by(suppressions.c.email_hash)).all()
    assert [(r.reason, r.source, r.created_at) for r in rows] == [
        ("bounce", "smtp", NOW),
        ("manual", "", NOW),
    ]
