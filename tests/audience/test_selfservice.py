"""What a subscriber does by link, called as the web service calls it: by the id a token
carries, idempotent, with every change in the consent history."""

from __future__ import annotations

import datetime as dt

from newsletter.audience.addresses import parse
from newsletter.audience.optin import Signup
from newsletter.audience.selfservice import (
    Changes,
    Unsubscribed,
    data_of,
    forget_id,
    profile,
    set_newsletters,
    unsubscribe_id,
)
from newsletter.audience.subscribers import add, listing
from newsletter.store import Store
from newsletter.store import people as q

NOW = dt.datetime(2025, 5, 14, 6, 0, tzinfo=dt.UTC)
JANE = "jane@example.com"


def _jane(store: Store) -> int:
    add(store, JANE, "daily", name="Jane")
    with store.begin() as conn:
        person = q.by_key(conn, parse(JANE).key)
    assert person is not None
    return person.id


def test_one_click_unsubscribes_once_and_says_so(store: Store) -> None:
    jane = _jane(store)
    assert unsubscribe_id(store, jane, "daily", now=NOW) == Unsubscribed(
        "jane@example.com", "daily", changed=True
    )
    assert unsubscribe_id(store, jane, "daily", now=NOW) == Unsubscribed(
        "jane@example.com", "daily", changed=False
    )
    assert unsubscribe_id(store, jane + 1, "daily", now=NOW) is None
    with store.begin() as conn:
        actions = [(e["action"], e["method"]) for e in q.history(conn, parse(JANE).hash)]
    assert actions == [("subscribed", "command"), ("unsubscribed", "one-click")]


def test_preferences_leave_at_once_add_through_opt_in_and_record_each_change(
    store: Store,
) -> None:
    jane = _jane(store)
    changes = set_newsletters(store, jane, {"weekly"}, {"daily", "weekly"}, per_address=3, now=NOW)
    assert changes == Changes(
        {"daily": "unsubscribed", "weekly": "pending"}, Signup(jane, JANE, ["weekly"]), []
    )
    again = set_newsletters(store, jane, {"weekly"}, {"daily", "weekly"}, per_address=3, now=NOW)
    assert again == Changes({}, None, [])  # still pending: no second email
    found = profile(store, jane)
    assert found is not None
    assert found.newsletters == {"daily": "unsubscribed", "weekly": "pending"}
    data = data_of(store, jane)
    assert data is not None
    assert [(e["newsletter"], e["action"], e["method"]) for e in data["consent_history"]] == [
        ("daily", "subscribed", "command"),
        ("daily", "unsubscribed", "preferences"),
        ("weekly", "pending", "preferences"),
    ]


def test_erasure_by_link_leaves_only_the_suppressed_hash(store: Store) -> None:
    jane = _jane(store)
    assert forget_id(store, jane) is True
    assert forget_id(store, jane) is False
    assert profile(store, jane) is None
    assert data_of(store, jane) is None
    assert list(listing(store)) == []
    with store.begin() as conn:
        assert q.suppressed(conn, [parse(JANE).hash]) == {parse(JANE).hash: "erased"}
