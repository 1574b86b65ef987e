"""#11 rule 6: one address in any case is one person, for suppression, erasure, the sign-up
limit and duplicate detection; the address is still stored and sent as given."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.audience import delivery, optin
from newsletter.audience.importer import Importer
from newsletter.audience.subscribers import add, forget, listing, remove
from newsletter.errors import SubscriberError
from newsletter.model import hash_key
from newsletter.store import Store
from newsletter.store import people as q

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NEWSLETTERS = {"daily", "weekly", "green"}


def people(store: Store) -> dict[str, tuple[str | None, dict[str, str]]]:
    return {e.email: (e.suppressed, e.newsletters) for e in listing(store)}


def import_rows(store: Store, tmp_path: Path, rows: str) -> tuple[int, int, int, int]:
    path = tmp_path / "list.csv"
    path.write_text("email,name\n" + rows)
    report = Importer(store, NEWSLETTERS, newsletter="daily").run(path)
    return report.added, report.updated, report.unchanged, report.skipped


def test_a_forgotten_address_comes_back_in_no_case(store: Store, tmp_path: Path) -> None:
    add(store, "Zoe.Kwan@example.com", "daily")
    forget(store, "Zoe.Kwan@example.com")
    with pytest.raises(SubscriberError, match=r"suppression list \(erased\): not added$"):
        add(store, "zoe.kwan@example.com", "daily")
    signup = optin.request(store, "ZOE.KWAN@example.com", ["daily"], per_address=3, now=NOW)
    assert signup is None  # no confirmation emailed
    assert import_rows(store, tmp_path, "zoe.kwan@Example.com,Zoe\nZOE.kwan@example.com,Z\n") == (
        0,
        0,
        0,
        2,
    )
    assert people(store) == {}
    with store.begin() as conn:
        assert list(q.recipients(conn, "daily")) == []


def test_one_address_in_many_cases_is_one_subscriber_kept_as_given(
    store: Store, tmp_path: Path
) -> None:
    assert add(store, "Zoe.Kwan@example.com", "daily") == "added"
    assert add(store, "zoe.kwan@example.com", "daily") == "unchanged"
    assert add(store, "ZOE.KWAN@EXAMPLE.COM", "weekly") == "added"  # a subscription added
    assert import_rows(store, tmp_path, "zoe.kwan@example.com,\nZoe.KWAN@example.com,\n") == (
        0,
        0,
        2,
        0,
    )
    signup = optin.request(store, "zoe.KWAN@example.com", ["green"], per_address=3, now=NOW)
    assert signup is not None and signup.email == "Zoe.Kwan@example.com"  # mailed as stored
    assert people(store) == {
        "Zoe.Kwan@example.com": (
            None,
            {"daily": "subscribed", "weekly": "subscribed", "green": "pending"},
        )
    }
    assert remove(store, "zoe.kwan@example.com", "daily") == ["daily"]
    with store.begin() as conn:
        assert [r.email for r in q.recipients(conn, "weekly")] == ["Zoe.Kwan@example.com"]


def test_the_confirmation_limit_counts_every_case_as_one_address(store: Store) -> None:
    variants = [
        "".join(c.upper() if n >> i & 1 else c for i, c in enumerate("zoek")) + "@example.com"
        for n in range(16)
    ]
    assert len(set(variants)) == 16
    mailed = [
        optin.request(store, v, ["daily"], per_address=3, now=NOW + dt.timedelta(minutes=i))
        for i, v in enumerate(variants)
    ]
    assert [s.email for s in mailed if s is not None] == ["zoek@example.com"] * 3
    assert list(people(store)) == ["zoek@example.com"]


def test_a_bounce_reported_in_another_case_suppresses_the_subscriber(store: Store) -> None:
    add(store, "Zoe.Kwan@example.com", "daily")
    event = delivery.DeliveryEvent(
        "ev1", "bounce", None, None, "ZOE.KWAN@EXAMPLE.COM", False, "", "bounce", "", NOW
    )
    assert delivery.record(store, [event], now=NOW).suppressed == 1
    assert people(store) == {"Zoe.Kwan@example.com": ("bounce", {"daily": "subscribed"})}
    with store.begin() as conn:
        assert list(q.recipients(conn, "daily")) == []


def test_a_suppression_kept_under_the_old_key_still_holds(store: Store, tmp_path: Path) -> None:
    """An erasure before revision 0006 kept the hash of the case-preserving key, and the
    address is gone, so the migration could not re-key it: that spelling stays blocked."""
    with store.begin() as conn:
        q.suppress(conn, [q.Suppression(hash_key("Zoe.Kwan@example.com"), "erased", "old", NOW)])
    with pytest.raises(SubscriberError, match="suppression list"):
        add(store, "Zoe.Kwan@EXAMPLE.com", "daily")
    assert optin.request(store, "Zoe.Kwan@example.com", ["daily"], per_address=3, now=NOW) is None
    assert import_rows(store, tmp_path, "Zoe.Kwan@example.com,Zoe\n") == (0, 0, 0, 1)
    assert people(store) == {}
