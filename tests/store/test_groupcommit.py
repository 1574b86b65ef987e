"""Group commit: units from many threads share transactions, each is answered only once its
transaction is committed, none is lost or doubled, and a unit that fails gets the answer it
would have got alone while the others still commit."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from newsletter.audience.addresses import parse
from newsletter.audience.importer import Importer
from newsletter.audience.selfservice import Unsubscribed, unsubscribe_id
from newsletter.errors import StoreError
from newsletter.store import Store, open_store
from newsletter.store import people as q
from newsletter.store.groupcommit import GroupCommit
from newsletter.workspace import Workspace

READERS = 120
NOW = dt.datetime(2025, 5, 14, 6, 0, tzinfo=dt.UTC)


def _readers(store: Store, root: Any, count: int = READERS) -> list[int]:
    """`count` readers of the daily; their ids."""
    path = root / "readers.csv"
    path.write_text("email\n" + "".join(f"reader{i:03d}@example.com\n" for i in range(count)))
    Importer(store, set(Workspace(root).config.newsletters), newsletter="daily").run(path)
    with store.begin() as conn:
        ids = [q.by_key(conn, parse(f"reader{i:03d}@example.com").key) for i in range(count)]
    return [person.id for person in ids if person is not None]


def _leave(subscriber_id: int) -> Any:
    return lambda store: unsubscribe_id(store, subscriber_id, "daily")


def _counts(store: Store, ids: list[int]) -> tuple[int, int]:
    """(subscriptions unsubscribed from the daily, unsubscribe lines in the history)."""
    with store.begin() as conn:
        statuses = [q.subscriptions_of(conn, i)["daily"]["status"] for i in ids]
        lines = sum(
            1
            for i in range(len(ids))
            for event in q.history(conn, parse(f"reader{i:03d}@example.com").hash)
            if event["action"] == "unsubscribed"
        )
    return statuses.count("unsubscribed"), lines


def _hold(commits: GroupCommit) -> threading.Event:
    """A unit that keeps the writer busy until the returned event is set: whatever is
    submitted meanwhile waits, and goes into the next transaction together."""
    running, gate = threading.Event(), threading.Event()

    def held(_store: Store) -> None:
        running.set()
        gate.wait(10)

    commits.submit(held)
    assert running.wait(10)
    return gate


def test_units_from_many_threads_share_transactions_and_none_is_lost_or_doubled(
    store: Store, workspace: Any
) -> None:
    ids = _readers(store, workspace)
    commits = GroupCommit(store)
    jobs = ids + ids[::10]  # a tenth twice: one-click is idempotent

    def post(subscriber_id: int) -> Unsubscribed | None:
        return commits.submit(_leave(subscriber_id)).result(timeout=30)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, jobs))

    assert all(a is not None for a in answers)
    changed = [a.email for a in answers if a is not None and a.changed]
    assert sorted(changed) == sorted(f"reader{i:03d}@example.com" for i in range(READERS))
    assert _counts(store, ids) == (READERS, READERS)
    assert commits.transactions < len(jobs)  # they did share


def test_units_waiting_together_commit_in_one_transaction(store: Store, workspace: Any) -> None:
    ids = _readers(store, workspace)
    commits = GroupCommit(store)
    gate = _hold(commits)
    rest = [commits.submit(_leave(i)) for i in ids[:50]]
    gate.set()
    assert all(f.result(timeout=10) is not None for f in rest)
    assert commits.transactions == 2  # the held unit's, then the fifty together
    assert _counts(store, ids[:50]) == (50, 50)


def test_each_answer_comes_only_after_its_commit(store: Store, workspace: Any) -> None:
    """Seen from another connection at the moment each future is settled: already there."""
    ids = _readers(store, workspace)
    commits = GroupCommit(store)
    other = open_store(store.url)
    seen: list[str] = []

    def visible(subscriber_id: int) -> Any:
        def check(_future: Future[Any]) -> None:
            with other.read() as conn:
                seen.append(q.subscriptions_of(conn, subscriber_id)["daily"]["status"])

        return check

    try:
        gate = _hold(commits)
        futures = []
        for i in ids[:30]:
            future = commits.submit(_leave(i))
            future.add_done_callback(visible(i))  # runs in the writer, as it settles
            futures.append(future)
        gate.set()
        for future in futures:
            future.result(timeout=10)
        commits.submit(lambda _s: None).result(timeout=10)  # the writer is past the callbacks
    finally:
        other.close()
    assert seen == ["unsubscribed"] * 30


def test_a_unit_failing_in_the_store_gets_its_own_answer_and_the_others_commit(
    store: Store, workspace: Any
) -> None:
    ids = _readers(store, workspace)
    commits = GroupCommit(store)

    def broken(s: Store) -> None:
        with s.begin() as conn:  # written, then rolled back with the rest
            q.set_status(conn, ids[5], "daily", "unsubscribed", "one-click", NOW, existed=True)
            raise LookupError("gone wrong half-way")

    gate = _hold(commits)
    before = [commits.submit(_leave(i)) for i in ids[:3]]
    failing = commits.submit(broken)
    after = [commits.submit(_leave(i)) for i in ids[3:5]]
    gate.set()

    with pytest.raises(LookupError, match="half-way"):  # as it failed alone, after the batch
        failing.result(timeout=10)
    assert all(f.result(timeout=10).changed for f in before + after)  # type: ignore[union-attr]
    with store.begin() as conn:
        left = [q.subscriptions_of(conn, i)["daily"]["status"] for i in ids[:6]]
    assert left == ["unsubscribed"] * 5 + ["subscribed"]  # the failed unit left nothing


def test_a_unit_failing_outside_the_store_fails_alone_in_the_same_transaction(
    store: Store, workspace: Any
) -> None:
    ids = _readers(store, workspace)
    commits = GroupCommit(store)

    def refuses(_store: Store) -> None:
        raise ValueError("not for the store")

    gate = _hold(commits)
    first = commits.submit(_leave(ids[0]))
    failing = commits.submit(refuses)
    last = commits.submit(_leave(ids[1]))
    gate.set()
    with pytest.raises(ValueError, match="not for the store"):
        failing.result(timeout=10)
    assert first.result(timeout=10) is not None and last.result(timeout=10) is not None
    assert commits.transactions == 2  # the held unit's, then the three together


def test_a_locked_database_is_every_waiting_units_answer(tmp_path: Any, workspace: Any) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    store = open_store(url, busy_timeout_ms=100)
    holder = open_store(url)
    try:
        ids = _readers(store, workspace, 3)
        commits = GroupCommit(store)
        with holder.begin():  # another process's write transaction, held
            futures = [commits.submit(_leave(i)) for i in ids]
            for future in futures:
                with pytest.raises(StoreError, match="locked by another process"):
                    future.result(timeout=10)
        # the lock released, the next unit commits
        assert commits.submit(_leave(ids[0])).result(timeout=10) is not None
    finally:
        holder.close()
        store.close()


def test_the_writer_thread_ends_when_idle_and_comes_back(store: Store, workspace: Any) -> None:
    ids = _readers(store, workspace, 2)
    commits = GroupCommit(store, idle=0.05)

    def writers() -> int:
        return sum(t.name == "group-commit" and t.is_alive() for t in threading.enumerate())

    assert commits.submit(_leave(ids[0])).result(timeout=10) is not None
    deadline = time.monotonic() + 5
    while writers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writers() == 0
    assert commits.submit(_leave(ids[1])).result(timeout=10) is not None
