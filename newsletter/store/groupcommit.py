"""Group commit: units of work handed in from many requests at once share one transaction.

A unit is a function of a `Store` (a domain function such as `selfservice.unsubscribe_id`,
unchanged). One writer thread takes whatever is waiting (whatever arrived while the previous
transaction was being written), runs each unit against the batch's connection, commits once,
and only then settles each unit's future: nothing is answered before it is committed. Under
load a transaction holds many units (one BEGIN IMMEDIATE, one COMMIT, one thread hop, the
WAL pages written once); a lone request waits for nobody.

A unit that fails inside the store (an exception through its `begin()`) rolls the batch
back; it then runs alone in its own transaction, exactly as it would have without group
commit (the same result, the same translated error), and the others run again together. So
a unit may run more than once before it commits: it must touch nothing but the store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from newsletter.store import Connection, Store

T = TypeVar("T")
MAX_BATCH = 64  # units per transaction: a batch is a few ms of work, never a long lock
IDLE_SECONDS = 1.0  # the writer thread ends after this long with nothing to do


class _Joined(Store):
    """The batch's transaction as a Store: `begin()` and `read()` give its connection, with no
    BEGIN or COMMIT of their own, and note an exception that went through them."""

    def __init__(self, store: Store, connection: Connection):
        super().__init__(store.engine, store.url, store.busy_timeout_ms, store.cache_kib)
        self.connection = connection
        self.failed = False

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            yield self.connection
        except BaseException:
            self.failed = True
            raise

    read = begin


class _Alone(Exception):
    """Unit `index` of the batch failed inside the store: roll back, run it alone."""

    def __init__(self, index: int):
        self.index = index


class GroupCommit:
    """`submit(work)` → a Future settled once `work`'s transaction is committed (or failed)."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH, idle: float = IDLE_SECONDS):
        self.store = store
        self.max_batch = max_batch
        self.idle = idle
        self.transactions = 0  # committed batches, for the tests and the benchmark
        self._pending: list[tuple[Callable[[Store], Any], Future[Any]]] = []
        self._wake = threading.Condition()
        self._running = False

    def submit(self, work: Callable[[Store], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._wake:
            self._pending.append((work, future))
            if self._running:
                self._wake.notify()
            else:  # started on demand, so an idle service (or a test's app) holds no thread
                self._running = True
                threading.Thread(target=self._writer, name="group-commit", daemon=True).start()
        return future

    def _writer(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._pending:
                        if not self._wake.wait(self.idle) and not self._pending:
                            self._running = False
                            return
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                self._commit(batch)
        finally:  # whatever stopped it, the next submit starts another writer
            with self._wake:
                self._running = False

    def _commit(self, batch: list[tuple[Callable[[Store], Any], Future[Any]]]) -> None:
        while batch:
            outcomes: list[tuple[Any, Exception | None]] = []
            try:
                with self.store.begin() as connection:
                    joined = _Joined(self.store, connection)
                    for index, (work, _) in enumerate(batch):
                        try:
                            outcomes.append((work(joined), None))
                        except Exception as exc:  # outside the store: its own answer
                            outcomes.append((None, exc))
                        if joined.failed:
                            raise _Alone(index)
            except _Alone as alone:  # rolled back: that unit alone, then the rest together
                work, future = batch.pop(alone.index)
                try:
                    _settle(future, work(self.store), None)
                except Exception as exc:
                    _settle(future, None, exc)
                continue
            except Exception as exc:  # BEGIN or COMMIT failed: every unit would have
                for _, future in batch:
                    _settle(future, None, exc)
                return
            self.transactions += 1
            for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                _settle(future, result, error)
            return


def _settle(future: Future[Any], result: Any, error: Exception | None) -> None:
    """A unit whose waiter went away (a cancelled request) was still done, as before."""
    if not future.set_running_or_notify_cancel():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
