"""Who receives an issue is one rule (`store.people.receiving`): the count `--dry-run` shows
the editor is the list the journal fixes when the send starts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from newsletter.audience import optin
from newsletter.audience.subscribers import add, forget, remove
from newsletter.send import SendOptions, plan_send, run_send
from newsletter.store import Store, journal
from newsletter.store import people as q
from newsletter.workspace import Workspace

ISSUE = "daily/2025-05-14"
NOW = dt.datetime(2025, 5, 14, 6, 0, tzinfo=dt.UTC)


def _everyone(store: Store) -> None:
    """Subscribers of daily in every state, and some who are not subscribers of daily."""
    add(store, "free@example.com", "daily", tier="free")
    add(store, "paid@example.com", "daily", tier="premium")
    add(store, "both@example.com", "daily", tier="premium")
    add(store, "both@example.com", "weekly")
    add(store, "left-weekly@example.com", "daily")
    add(store, "left-weekly@example.com", "weekly")
    remove(store, "left-weekly@example.com", "weekly")
    optin.request(store, "pending@example.com", ["daily"], per_address=3, now=NOW)
    add(store, "gone@example.com", "daily", tier="premium")
    remove(store, "gone@example.com", "daily")
    add(store, "bounced@example.com", "daily")
    with store.begin() as conn:
        person = q.by_key(conn, "bounced@example.com")
        assert person is not None
        q.suppress(
            conn,
            [q.Suppression(person.email_hash, "bounce", "sendgrid:bounce", NOW)],
        )
    add(store, "erased@example.com", "daily")
    forget(store, "erased@example.com")
    add(store, "weekly@example.com", "weekly", tier="premium")


def test_the_dry_run_counts_the_recipients_the_send_fixes(sending: Path, store: Store) -> None:
    _everyone(store)
    workspace = Workspace(sending)
    dry = plan_send(workspace, store, ISSUE, SendOptions(late=True, dry_run=True))
    assert dry.recipients == 4
    assert dry.by_tier == {"free": 2, "premium": 2}

    plan = plan_send(workspace, store, ISSUE, SendOptions(late=True))
    report = run_send(plan, store)
    with store.begin() as conn:
        fixed = journal.rows(conn, ISSUE, journal.STATES)
        tiers: dict[str, int] = {}
        for row in fixed:
            person = q.by_id(conn, row["subscriber_id"])
            assert person is not None
            tiers[person.tier] = tiers.get(person.tier, 0) + 1
    assert sorted(row["email"] for row in fixed) == [
        "both@example.com",
        "free@example.com",
        "left-weekly@example.com",
        "paid@example.com",
    ]
    assert len(fixed) == report.recipients == dry.recipients
    assert tiers == dry.by_tier
