"""Opening the database: WAL, locks, unreachable servers, newer schemas; all one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from newsletter.errors import SchemaVersionError, StoreError
from newsletter.store import Store, migrate, open_store


def test_a_new_database_gets_the_newest_schema(store: Store) -> None:
    with store.begin() as conn:
        assert migrate.current(conn) == migrate.head() == "0010"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    with store.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_a_locked_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    open_store(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        store = open_store(f"sqlite:///{path}", busy_timeout_ms=200)
    except StoreError as exc:
        error = exc
    else:  # opening needs no write when the schema is current: the first write waits
        with pytest.raises(StoreError) as caught, store.begin() as conn:
            conn.execute(text("INSERT INTO suppressions VALUES ('x', 'manual', '', '2025-01-01')"))
        error = caught.value
    finally:
        holder.rollback()
        holder.close()
    assert (
        str(error)
        == f"the database sqlite:///{path} is locked by another process (waited 0.2 s): try again"
    )


def test_a_database_from_a_newer_version_is_refused(db_url: str) -> None:
    store = open_store(db_url)
    with store.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    store.close()
    with pytest.raises(SchemaVersionError) as caught:
        open_store(db_url)
    shown = db_url.replace("postgres@", "postgres@") if "postgresql" in db_url else db_url
    assert str(caught.value) == (
        f"the database {shown} has schema version 0099, newer than this version of newsletter "
        "knows (up to 0010): upgrade newsletter"
    )


def test_an_unreachable_server_is_one_line_and_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql+psycopg://editor:s3cret@127.0.0.1:1/news")
    message = str(caught.value)
    assert message.startswith(
        "cannot open the database postgresql+psycopg://editor:***@127.0.0.1:1/news: "
    )
    assert "s3cret" not in message and "\n" not in message


def test_a_folder_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{tmp_path / 'missing' / 'n.db'}")
    assert (
        str(caught.value)
        == f"cannot open the database sqlite:///{tmp_path / 'missing' / 'n.db'}: unable to open database file"
    )


def test_a_url_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store("mysqlx://nope")
    assert str(caught.value).startswith("cannot use the database URL ")


def test_a_read_takes_no_write_lock_and_keeps_its_snapshot(tmp_path: Path) -> None:
    """A long report (Store.read) must not hold up the webhook or a send on SQLite."""
    url = f"sqlite:///{tmp_path / 'n.db'}"
    reader = open_store(url)
    writer = open_store(url, busy_timeout_ms=200)
    with writer.begin() as conn:
        conn.execute(text("INSERT INTO counters (name, value) VALUES ('x', 1)"))
    with reader.read() as conn:
        assert conn.execute(text("SELECT value FROM counters WHERE name = 'x'")).scalar() == 1
        with writer.begin() as other:  # would wait 200 ms and fail under a write lock
            other.execute(text("UPDATE counters SET value = 2 WHERE name = 'x'"))
        assert conn.execute(text("SELECT value FROM counters WHERE name = 'x'")).scalar() == 1
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16384
    with reader.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -131072
    reader.close()
    writer.close()


def test_a_store_opened_with_a_smaller_cache_keeps_it(tmp_path: Path) -> None:
    """`newsletter send` opens the store with a 32 MB page cache, not 128 MB (a send to a
    million filled all of it); every connection has it, and a read gives it back."""
    from newsletter.store import SEND_CACHE_KIB

    store = open_store(f"sqlite:///{tmp_path / 'n.db'}", cache_kib=SEND_CACHE_KIB)
    with store.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32768
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16384
    with store.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -32768
    store.close()
