"""Upgrading the package upgrades an existing database without losing a row."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from newsletter.store import migrate, open_store
from newsletter.store import people as q


def test_a_database_made_by_the_first_schema_is_upgraded_with_every_row(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0001")
        assert migrate.current(conn) == "0001"
        conn.execute(
            text(
                "INSERT INTO subscribers (id, email, email_key, email_hash, name, tier, source, attributes, created_at, updated_at) "
                "VALUES (1, 'Jane@Example.com', 'Jane@example.com', 'h1', 'Jane', 'premium', 'import:old.csv', '{}', "
                "'2024-01-01 10:00:00', '2024-01-01 10:00:00'), "
                "(2, 'bob@example.org', 'bob@example.org', 'h2', '', 'free', 'command', '{}', "
                "'2024-02-01 10:00:00', '2024-03-01 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO subscriptions (subscriber_id, newsletter, status, method, created_at, updated_at, subscribed_at) "
                "VALUES (1, 'daily', 'subscribed', 'import', '2024-01-01 10:00:00', '2024-01-01 10:00:00', '2024-01-01 10:00:00'), "
                "(2, 'daily', 'unsubscribed', 'command', '2024-02-01 10:00:00', '2024-03-01 10:00:00', NULL)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO suppressions VALUES ('h3', 'bounce', 'import:cleaned.csv', '2024-04-01 00:00:00')"
            )
        )
    engine.dispose()

    store = open_store(db_url)
    with store.begin() as conn:
        assert migrate.current(conn) == migrate.head() == "0005"
        # the id high-water mark starts at the highest existing id
        assert conn.execute(text("SELECT value FROM counters")).scalar() == 2
        people = q.by_keys(conn, ["Jane@example.com", "bob@example.org"])
        assert {k: (p.name, p.tier) for k, p in people.items()} == {
            "Jane@example.com": ("Jane", "premium"),
            "bob@example.org": ("", "free"),
        }
        assert q.statuses(conn, [1, 2]) == {
            (1, "daily"): "subscribed",
            (2, "daily"): "unsubscribed",
        }
        assert q.suppressed(conn, ["h3"]) == {"h3": "bounce"}
        assert [r.email for r in q.recipients(conn, "daily")] == ["Jane@Example.com"]
        history = q.history(conn, "h2")
        assert [(e["action"], e["method"], e["at"].isoformat()) for e in history] == [
            ("unsubscribed", "migration", "2024-03-01T10:00:00+00:00")
        ]
    store.close()


def test_opening_an_up_to_date_database_changes_nothing(db_url: str) -> None:
    open_store(db_url).close()
    store = open_store(db_url)
    with store.begin() as conn:
        assert migrate.current(conn) == migrate.head()
    store.close()
