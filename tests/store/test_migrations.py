"""Upgrading the package upgrades an existing database without losing a row."""

from __future__ import annotations

import pytest
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
        assert migrate.current(conn) == migrate.head() == "0009"
        # the id high-water mark starts at the highest existing id
        assert conn.execute(text("SELECT value FROM counters")).scalar() == 2
        people = q.by_keys(conn, ["jane@example.com", "bob@example.org"])  # 0006: case-folded
        assert {k: (p.name, p.tier) for k, p in people.items()} == {
            "jane@example.com": ("Jane", "premium"),
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


def test_case_variants_of_one_address_are_merged_and_the_suppression_holds(db_url: str) -> None:
    """0006: Zoe.Kwan@, zoe.kwan@ and ZOE.KWAN@ were three subscribers (one bounced) and an
    erased spelling was suppressed by its old hash: one subscriber after, the oldest, with
    every subscription and history line, suppressed in every case; nothing else lost."""
    from newsletter.audience.subscribers import add, listing
    from newsletter.errors import SubscriberError
    from newsletter.model import hash_key

    old = {
        n: hash_key(k)
        for n, k in (
            (2, "Zoe.Kwan@example.com"),
            (1, "zoe.kwan@example.com"),
            (3, "ZOE.KWAN@example.com"),
            (4, "ann@example.com"),
        )
    }
    engine = create_engine(db_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0005")
        subscriber = (
            "INSERT INTO subscribers (id, email, email_key, email_hash, name, tier, source, "
            "attributes, created_at, updated_at) VALUES "
            "(:id, :email, :key, :hash, :name, 'free', 'import', '{}', :at, :at)"
        )
        for id_, email, key, name, at in (
            (1, "zoe.kwan@example.com", "zoe.kwan@example.com", "", "2024-02-01 10:00:00"),
            (2, "Zoe.Kwan@Example.com", "Zoe.Kwan@example.com", "Zoe", "2024-01-01 10:00:00"),
            (3, "ZOE.KWAN@example.com", "ZOE.KWAN@example.com", "Z", "2024-03-01 10:00:00"),
            (4, "ann@example.com", "ann@example.com", "Ann", "2024-01-05 10:00:00"),
        ):
            conn.execute(
                text(subscriber),
                {"id": id_, "email": email, "key": key, "hash": old[id_], "name": name, "at": at},
            )
        subscription = (
            "INSERT INTO subscriptions (subscriber_id, newsletter, status, method, created_at, "
            "updated_at, subscribed_at, unsubscribed_at) VALUES (:id, :nl, :status, 'import', "
            ":created, :updated, :created, :gone)"
        )
        for id_, nl, status, created, updated, gone in (
            (2, "daily", "subscribed", "2024-01-01 10:00:00", "2024-01-01 10:00:00", None),
            (
                1,
                "daily",
                "unsubscribed",
                "2024-02-01 10:00:00",
                "2024-04-01 10:00:00",
                "2024-04-01 10:00:00",
            ),
            (3, "weekly", "subscribed", "2024-03-01 10:00:00", "2024-03-01 10:00:00", None),
            (4, "daily", "subscribed", "2024-01-05 10:00:00", "2024-01-05 10:00:00", None),
        ):
            conn.execute(
                text(subscription),
                {
                    "id": id_,
                    "nl": nl,
                    "status": status,
                    "created": created,
                    "updated": updated,
                    "gone": gone,
                },
            )
        event = (
            "INSERT INTO consent_events (email_hash, subscriber_id, newsletter, action, method, "
            "detail, at) VALUES (:hash, :id, :nl, :action, 'import', '', :at)"
        )
        for id_, nl, action, at in (
            (2, "daily", "subscribed", "2024-01-01 10:00:00"),
            (1, "daily", "unsubscribed", "2024-04-01 10:00:00"),
            (3, "weekly", "subscribed", "2024-03-01 10:00:00"),
            (3, None, "suppressed", "2024-05-01 10:00:00"),
        ):
            conn.execute(
                text(event), {"hash": old[id_], "id": id_, "nl": nl, "action": action, "at": at}
            )
        suppression = "INSERT INTO suppressions VALUES (:hash, :reason, 'old', :at)"
        conn.execute(
            text(suppression), {"hash": old[3], "reason": "bounce", "at": "2024-05-01 10:00:00"}
        )
        erased = hash_key("Gone.Reader@example.com")  # erased: only the hash of the old key
        conn.execute(
            text(suppression), {"hash": erased, "reason": "erased", "at": "2024-05-02 10:00:00"}
        )
    engine.dispose()

    store = open_store(db_url)
    try:
        with store.begin() as conn:
            assert migrate.current(conn) == migrate.head()
            assert conn.execute(text("SELECT COUNT(*) FROM suppressions")).scalar() == 3  # all kept
            zoe = q.by_key(conn, "zoe.kwan@example.com")
            assert zoe is not None
            assert (zoe.id, zoe.email, zoe.name, zoe.email_hash) == (
                2,
                "Zoe.Kwan@Example.com",
                "Zoe",
                hash_key("zoe.kwan@example.com"),
            )
            assert q.statuses(conn, [1, 2, 3, 4]) == {
                (2, "daily"): "unsubscribed",  # the later wish (#1's unsubscribe) wins
                (2, "weekly"): "subscribed",
                (4, "daily"): "subscribed",
            }
            assert [
                (e["subscriber_id"], e["newsletter"], e["action"], e["method"])
                for e in q.history(conn, zoe.email_hash)
            ] == [
                (2, "daily", "subscribed", "import"),
                (2, "daily", "unsubscribed", "import"),
                (2, "weekly", "subscribed", "import"),
                (2, None, "suppressed", "import"),
                (2, None, "merged", "migration"),
                (2, None, "merged", "migration"),
            ]
            assert [r.email for r in q.recipients(conn, "daily")] == ["ann@example.com"]
            assert list(q.recipients(conn, "weekly")) == []  # suppressed in every case
            assert q.by_key(conn, "ann@example.com").email_hash == old[4]  # type: ignore[union-attr]
        assert [(e.email, e.suppressed) for e in listing(store)] == [
            ("ann@example.com", None),
            ("Zoe.Kwan@Example.com", "bounce"),
        ]
        for spelling in (
            "zoe.kwan@example.com",
            "Zoe.Kwan@example.com",
            "ZOE.KWAN@EXAMPLE.COM",
            "zOe.KwAn@example.com",
        ):
            with pytest.raises(SubscriberError, match=r"suppression list \(bounce\)"):
                add(store, spelling, "green")
        with pytest.raises(SubscriberError, match=r"suppression list \(erased\)"):
            add(store, "Gone.Reader@example.com", "green")
    finally:
        store.close()
