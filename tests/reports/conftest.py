"""The reports' shared history: a consent history and three sends with known answers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from newsletter.audience.delivery import DeliveryEvent, record
from newsletter.audience.subscribers import add, remove
from newsletter.store import Store, journal

TARIFF = "https://news.harbourledger.example/2025-05-12/tariff-truce-container-bookings?utm_source=newsletter&utm_medium=email&utm_campaign=daily-2025-05-12"
LAND = "https://news.harbourledger.example/2025-05-12/kowloon-land-coupon"


def at(day: str, hour: int = 9) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def send(store: Store, issue: str, when: dt.datetime) -> dict[str, int]:
    """A send recorded as the sender records it: every receiving subscriber, then sent."""
    with store.begin() as conn:
        journal.start(conn, issue, issue.split("/")[0], "sendgrid", when)
        conn.execute(text("UPDATE send_journal SET state = 'sent' WHERE issue = :i"), {"i": issue})
        rows = conn.execute(
            text(
                "SELECT s.email, s.id FROM send_journal j"
                " JOIN subscribers s ON s.id = j.subscriber_id WHERE j.issue = :i"
            ),
            {"i": issue},
        )
        return {email.split("@")[0]: int(sid) for email, sid in rows}


class Events:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.n = 0

    def __call__(
        self,
        issue: str,
        ids: dict[str, int],
        when: dt.datetime,
        *happened: tuple[str, str, dict[str, object]],
    ) -> None:
        batch = []
        for who, kind, extra in happened:
            self.n += 1
            batch.append(
                DeliveryEvent(
                    event_id=f"e{self.n}",
                    event=kind,
                    issue=issue,
                    subscriber_id=ids[who],
                    email=f"{who}@example.com",
                    machine=bool(extra.get("machine", False)),
                    url=str(extra.get("url", "")),
                    detail=str(extra.get("detail", "")),
                    provider_id="",
                    occurred_at=when,
                )
            )
        record(self.store, batch, now=when)


def E(who: str, kind: str, **extra: object) -> tuple[str, str, dict[str, object]]:
    return (who, kind, extra)


@pytest.fixture
def history(store: Store) -> Store:
    for who in ("a", "b", "c"):
        add(store, f"{who}@example.com", "daily", method="import", now=at("2025-04-20"))
    add(store, "d@example.com", "daily", method="command", now=at("2025-04-25"))
    for who in ("a", "c"):
        add(store, f"{who}@example.com", "green", method="import", now=at("2025-05-01"))
    add(store, "e@example.com", "daily", method="double-opt-in", now=at("2025-05-06"))
    add(store, "f@example.com", "daily", method="api:crm", now=at("2025-05-07"))
    remove(store, "b@example.com", "daily", method="one-click", now=at("2025-05-08"))

    events = Events(store)
    ids = send(store, "daily/2025-05-12", at("2025-05-12", 6))
    assert sorted(ids) == ["a", "c", "d", "e", "f"]  # b left before
    events(
        "daily/2025-05-12",
        ids,
        at("2025-05-12", 7),
        *(E(w, "delivered") for w in "acde"),
        E("a", "open"),
        E("a", "open"),
        E("c", "open"),
        E("d", "open", machine=True),  # Apple's Mail Privacy Protection: not a reader
        E("a", "click", url=TARIFF),
        E("a", "click", url=LAND),
        E("c", "click", url=TARIFF),
        E("f", "bounce", detail="bounce"),
        E("e", "spamreport"),
    )
    remove(store, "c@example.com", "daily", method="preferences", now=at("2025-05-13"))
    remove(store, "d@example.com", "daily", method="api:crm", now=at("2025-05-13"))

    green = send(store, "green/2025-05-14", at("2025-05-14", 6))
    events(
        "green/2025-05-14",
        green,
        at("2025-05-14", 7),
        E("a", "delivered"),
        E("c", "delivered"),
        E("a", "open"),
    )
    later = send(store, "daily/2025-05-15", at("2025-05-15", 6))
    assert sorted(later) == ["a"]
    events("daily/2025-05-15", later, at("2025-05-15", 7), E("a", "delivered"))
    return store
