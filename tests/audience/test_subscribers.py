"""Single-subscriber commands, listing, stats, and the export that imports back the same."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from newsletter.audience.importer import Importer
from newsletter.audience.subscribers import (
    Forgotten,
    StatsRow,
    add,
    export,
    forget,
    listing,
    remove,
    stats,
)
from newsletter.errors import SubscriberError
from newsletter.store import Store, open_store

NEWSLETTERS = {"daily", "weekly", "green"}


def people(store: Store) -> list[tuple[str, str, str, str | None, dict[str, str]]]:
    return [(e.email, e.name, e.tier, e.suppressed, e.newsletters) for e in listing(store)]


def test_add_remove_and_the_history(store: Store) -> None:
    assert add(store, "Jane@Example.com", "daily", name="Jane", tier="premium") == "added"
    assert add(store, "jane@example.com", "weekly") == "added"  # one person in any case
    assert add(store, "Jane@EXAMPLE.COM", "weekly") == "unchanged"
    assert add(store, "Jane@example.com", "weekly") == "unchanged"
    assert remove(store, "Jane@example.com", "daily") == ["daily"]
    assert remove(store, "Jane@example.com", "daily") == []
    assert add(store, "Jane@example.com", "daily") == "resubscribed"
    assert people(store) == [
        (
            "Jane@Example.com",
            "Jane",
            "premium",
            None,
            {"daily": "subscribed", "weekly": "subscribed"},
        )
    ]


def test_remove_without_a_newsletter_unsubscribes_from_all(store: Store) -> None:
    add(store, "a@example.com", "daily")
    add(store, "a@example.com", "green")
    assert remove(store, "a@example.com") == ["daily", "green"]
    with pytest.raises(SubscriberError, match=r"^no subscriber nobody@example\.com$"):
        remove(store, "nobody@example.com")
    with pytest.raises(SubscriberError, match=r"^a@example\.com has no subscription to weekly$"):
        remove(store, "a@example.com", "weekly")


def test_a_suppressed_or_invalid_address_cannot_be_added(store: Store) -> None:
    add(store, "gone@example.com", "daily")
    assert forget(store, "gone@example.com") == Forgotten(deleted=True, outbox_files=0)
    with pytest.raises(
        SubscriberError,
        match=r"^gone@example.com is on the suppression list \(erased\): not added$",
    ):
        add(store, "gone@example.com", "daily")
    with pytest.raises(SubscriberError, match="is not a valid address"):
        add(store, "not an address", "daily")
    assert people(store) == []


def test_list_filters(store: Store) -> None:
    add(store, "a@example.com", "daily")
    add(store, "b@example.com", "weekly")
    remove(store, "b@example.com")
    add(store, "c@example.com", "daily")
    forget(store, "c@example.com")
    assert [e.email for e in listing(store, "daily")] == ["a@example.com"]
    assert [e.email for e in listing(store, status="unsubscribed")] == ["b@example.com"]
    assert [e.email for e in listing(store, "weekly", "subscribed")] == []


def test_stats_per_newsletter_and_tier(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        "email,tier,status,suppressed\n"
        "a@example.com,free,subscribed,\nb@example.com,premium,subscribed,\nc@example.com,premium,pending,\n"
        "d@example.com,free,unsubscribed,\ne@example.com,free,subscribed,\n"
    )
    Importer(store, NEWSLETTERS, newsletter="daily").run(path)
    path.write_text("email,suppressed\ne@example.com,complaint\n")
    Importer(store, NEWSLETTERS, newsletter="daily").run(path)
    assert stats(store) == [
        StatsRow("daily", "free", subscribed=1, pending=0, unsubscribed=1, suppressed=1),
        StatsRow("daily", "premium", subscribed=1, pending=1, unsubscribed=0, suppressed=0),
    ]


def test_the_export_imports_back_into_the_same_lists(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    tricky = [
        '=HYPERLINK("https://evil.example")',
        "+1 555 0100",
        "-minus",
        "@handle",
        "\tTab",
        "'=quoted",
        "Zoë",
    ]
    for i, name in enumerate(tricky):
        add(store, f"p{i}@example.com", "daily", name=name, tier="premium" if i % 2 else "free")
    add(store, "-dash@example.com", "weekly", name="Dash")
    add(store, "p1@example.com", "green")
    remove(store, "p2@example.com")
    path = tmp_path / "bounce.csv"
    path.write_text("email,status\np3@example.com,cleaned\n")
    Importer(store, NEWSLETTERS, newsletter="daily").run(path)
    path.write_text("email,status\npending@example.com,pending\n")
    Importer(store, NEWSLETTERS, newsletter="weekly").run(path)
    before = people(store)

    first = tmp_path / "export.csv"
    assert export(store, first) == 10  # 7 + dash + p1 in green + pending
    rows = list(csv.reader(first.read_text(encoding="utf-8").splitlines(keepends=True)))
    cells = [c for row in rows for c in row]
    assert '\'=HYPERLINK("https://evil.example")' in cells and "'+1 555 0100" in cells
    assert "'-dash@example.com" in cells and "''=quoted" in cells and "'\tTab" in cells
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)

    if db_url.startswith("sqlite"):
        other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    else:
        other = store  # one PostgreSQL database per test: empty it instead
        from tests.conftest import _fresh_postgres

        other.close()
        _fresh_postgres(db_url)
        other = open_store(db_url)
    report = Importer(other, NEWSLETTERS).run(first)
    assert report.rejected == [] and report.skipped == 0
    assert people(other) == before
    second = tmp_path / "export2.csv"
    export(other, second)

    def strip(p: Path) -> list[list[str]]:  # without source and created_at, which the import sets
        return [
            row[:6] for row in csv.reader(p.read_text(encoding="utf-8").splitlines(keepends=True))
        ]

    assert strip(second) == strip(first)
    other.close()


def test_an_erased_subscribers_id_is_never_given_to_someone_else(
    store: Store, tmp_path: Path
) -> None:
    """The send journal and delivery events name subscribers by id: after the newest
    subscriber is erased, neither a new sign-up nor an import may take their id."""
    from newsletter.store import people as q

    add(store, "first@example.com", "daily")
    add(store, "newest@example.com", "daily")
    with store.begin() as conn:
        erased = q.by_key(conn, "newest@example.com")
    assert erased is not None
    forget(store, "newest@example.com")
    add(store, "after@example.com", "daily")
    listing_file = tmp_path / "l.csv"
    listing_file.write_text("email\nimported@example.com\n")
    Importer(store, {"daily"}, newsletter="daily").run(listing_file)
    with store.begin() as conn:
        ids = {
            k: p.id
            for k, p in q.by_keys(conn, ["after@example.com", "imported@example.com"]).items()
        }
    assert erased.id not in ids.values()
    assert sorted(ids.values())[0] > erased.id
