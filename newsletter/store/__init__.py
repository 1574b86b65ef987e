"""The database: SQLite by default, PostgreSQL for publications that outgrow a file.

`open_store(url)` connects, checks the schema version and upgrades it (in one transaction),
and returns a `Store` whose `begin()` gives a connection inside a transaction. SQLite runs in
WAL mode with a busy timeout, so the web service and a send can use it at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

# Connection is re-exported: the domains type their connections without importing SQLAlchemy
from sqlalchemy import Connection as Connection
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from newsletter.errors import NoDatabase, StoreError, WriteConflict

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = -131072  # SQLite's page cache: 128 MB at most, big imports touch big indexes
READ_CACHE_KIB = -16384  # 16 MB for a report: a year's aggregation peaked at 1.1 GB at 128
# 32 MB for a send: it walks the journal in id order, so a small cache holds what it touches;
# at 128 MB a send to 1,000,000 filled all of it (peak RSS 287 MB, #16)
SEND_CACHE_KIB = -32768


def shown(url: str) -> str:
    """The URL with its password masked: safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unreadable database URL>"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text


def _unique_violation(exc: IntegrityError) -> bool:
    """A duplicate key (PostgreSQL's 23505, SQLite's UNIQUE constraint), not a broken
    reference or a missing value (those are bugs, and stay what they are)."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in str(orig)


class Store:
    def __init__(
        self,
        engine: Engine,
        url: str,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        cache_kib: int = CACHE_KIB,
    ):
        self.engine = engine
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.cache_kib = cache_kib
        # SQLite has one writer at a time and every transaction here writes (BEGIN
        # IMMEDIATE): threads of one process take turns on this lock instead of meeting in
        # SQLite's busy handler, which sleeps up to 100 ms between tries (the web service's
        # p99 fell from 1.2 s to a few ms). Other processes still wait in the busy handler.
        self._turn: AbstractContextManager[object] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        try:
            with self._turn, self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            reason = _reason(exc)
            if "locked" in reason or "busy" in reason:
                raise StoreError(
                    f"the database {shown(self.url)} is locked by another process "
                    f"(waited {self.busy_timeout_ms / 1000:g} s): try again"
                ) from None
            raise StoreError(f"database error on {shown(self.url)}: {reason}") from None
        except IntegrityError as exc:
            if not _unique_violation(exc):
                raise
            raise WriteConflict(
                f"another transaction wrote the same record at once: {_reason(exc)}"
            ) from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads (reports): on SQLite a deferred one, a snapshot
        that takes no write lock, so a long report never holds up the webhook or a send."""
        try:
            with self.engine.connect() as connection:
                connection.info["deferred"] = True
                sqlite = self.dialect == "sqlite"
                try:
                    if sqlite:  # SQLite's sorters take as much memory as its page cache
                        _pragma(connection, f"cache_size = {READ_CACHE_KIB}")
                    with connection.begin():
                        yield connection
                finally:
                    connection.info.pop("deferred", None)
                    if sqlite:
                        _pragma(connection, f"cache_size = {self.cache_kib}")
        except OperationalError as exc:
            raise StoreError(f"database error on {shown(self.url)}: {_reason(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


def _pragma(connection: Connection, setting: str) -> None:
    """A PRAGMA on the DBAPI connection itself: through SQLAlchemy it would begin a
    transaction."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {setting}")
    finally:
        cursor.close()


def _sqlite_setup(engine: Engine, busy_timeout_ms: int, cache_kib: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL keeps it safe from corruption
        cursor.execute(f"PRAGMA cache_size = {int(cache_kib)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock when a reader later writes,
        # and DDL (migrations) is transactional too
        # (a reader's `Store.read` asks for a deferred one: a snapshot, no lock)
        deferred = connection.info.get("deferred")
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _check_url(url: str, where: str) -> None:
    """A URL SQLAlchemy or the driver would fail on with a ValueError (a port of 99999 or
    'abc'): one line that names the setting to fix."""
    try:
        port = make_url(url).port
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"{where}not a usable database URL: {exc}") from None
    if port is not None and not 1 <= port <= 65535:
        raise StoreError(f"{where}the port {port} of {shown(url)} is not between 1 and 65535")


def open_store(
    url: str,
    *,
    upgrade: bool = True,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    setting: str | None = None,
    create: bool = True,
    cache_kib: int = CACHE_KIB,
) -> Store:
    """Connect to `url`, check its schema version, and upgrade it to this version's.
    `setting` names where the URL came from, for the errors (NEWSLETTER_DATABASE_URL…).
    With `create=False` (the service), a database that is not there yet, or holds no schema of
    ours, is a NoDatabase error: a typo in a URL must not start a service on an empty list.
    `cache_kib`: SQLite's page cache (negative: KiB), for a command that needs less."""
    from newsletter.store import migrate

    where = f"{setting}: " if setting else ""
    _check_url(url, where)
    database = sqlite_file(url)
    if not create and database is not None and not database.exists():
        raise NoDatabase(
            f"no database at {database}: `newsletter db init` creates an empty one "
            "(`newsletter subscribers import …` creates it too); serve never does"
        )
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StoreError(f"{where}cannot use the database URL {shown(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine, busy_timeout_ms, cache_kib)
    store = Store(engine, url, busy_timeout_ms, cache_kib)
    try:
        engine.connect().close()
        with store.begin() as connection:
            if not create and migrate.current(connection) is None:
                raise NoDatabase(
                    f"{where}the database {shown(url)} holds no newsletter data yet: "
                    "`newsletter db init` creates it; serve never does"
                )
            if upgrade:
                migrate.upgrade(connection, shown_url=shown(url))
    except StoreError:
        engine.dispose()
        raise
    except (DBAPIError, SQLAlchemyError) as exc:
        engine.dispose()
        raise StoreError(f"cannot open the database {shown(url)}: {_reason(exc)}") from None
    return store
