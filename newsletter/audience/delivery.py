"""The provider's delivery events applied to the lists: store each once, act on the new ones.
(Verifying SendGrid's webhook and reading its body is `send.backends.sendgrid_webhook`'s.)

What the events do to the lists:
- `bounce` of type bounce, `spamreport`, and `dropped` because the address bounced, reported
  spam or unsubscribed before: the address goes on the suppression list (nothing lifts it).
- `unsubscribe` / `group_unsubscribe`: unsubscribed from the issue's newsletter (from all of
  them when the event names no issue).
- Everything else (`delivered`, `open`, `click`, `blocked` bounces, other drops, `deferred`,
  `processed`) is stored and counted; none of it changes a subscription, so a late
  `delivered` never undoes a suppression.
Events are matched to an issue and a subscriber by the opaque `custom_args` the send put on
each message (`nl_issue`, `nl_subscriber`), never by address. Each event is stored once, by
its `sg_event_id`, and acts only when it is first stored: SendGrid sends duplicates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from newsletter.audience import addresses
from newsletter.store import Connection, Store
from newsletter.store import events as eq
from newsletter.store import people as q

SUPPRESSING_DROPS = {
    "Bounced Address": "bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribed",
}


@dataclass(frozen=True)
class DeliveryEvent:
    event_id: str
    event: str
    issue: str | None
    subscriber_id: int | None
    email: str
    machine: bool
    url: str
    detail: str
    provider_id: str
    occurred_at: dt.datetime

    @property
    def newsletter(self) -> str | None:
        return self.issue.split("/", 1)[0] if self.issue else None


@dataclass(frozen=True)
class Recorded:
    received: int
    stored: int  # new events; the rest were duplicates
    suppressed: int
    unsubscribed: int


def _email_hash(email: str) -> str | None:
    try:
        return addresses.parse(email).hash
    except addresses.InvalidAddress:
        return None


def record(store: Store, events: list[DeliveryEvent], now: dt.datetime | None = None) -> Recorded:
    """Store the events (once each) and apply the new ones to the lists, in one transaction:
    the webhook answers 2xx only after this returns."""
    now = now or dt.datetime.now(dt.UTC)
    suppressed = unsubscribed = 0
    with store.begin() as conn:
        rows: list[dict[str, Any]] = [
            {
                "event_id": e.event_id,
                "event": e.event,
                "issue": e.issue,
                "subscriber_id": e.subscriber_id,
                "email_hash": _email_hash(e.email) if e.email and _acts(e) else None,
                "machine": e.machine,
                "url": e.url,
                "detail": e.detail,
                "provider_id": e.provider_id,
                "occurred_at": e.occurred_at,
                "received_at": now,
            }
            for e in events
        ]
        new = eq.insert_new(conn, rows)
        stored = len(new)
        hashes: dict[str, str | None] = {r["event_id"]: r["email_hash"] for r in rows}
        for e in events:
            if e.event_id not in new or not _acts(e):
                continue
            new.discard(e.event_id)  # a duplicate inside the batch acts once
            person = q.by_id(conn, e.subscriber_id) if e.subscriber_id is not None else None
            sent_to = hashes[e.event_id]
            if person is not None and sent_to and person.email_hash != sent_to:
                person = None  # the id now names someone else (erased, id reused): by address
            if person is None and e.email:  # also a message sent by another tool
                person = _by_address(conn, e.email)
            email_hash = person.email_hash if person else sent_to
            reason = _suppression_reason(e)
            if reason and email_hash:
                if not q.suppressed(conn, [email_hash]):
                    q.suppress(
                        conn, [q.Suppression(email_hash, reason, f"sendgrid:{e.event}", now)]
                    )
                    q.record(conn, [_consent(email_hash, person, None, "suppressed", e, now)])
                    suppressed += 1
            elif e.event in ("unsubscribe", "group_unsubscribe") and person is not None:
                unsubscribed += _unsubscribe(conn, person, e, now)
    return Recorded(len(events), stored, suppressed, unsubscribed)


def _by_address(conn: Connection, email: str) -> q.SubscriberRow | None:
    try:
        return q.by_key(conn, addresses.parse(email).key)
    except addresses.InvalidAddress:
        return None


def _acts(e: DeliveryEvent) -> bool:
    return _suppression_reason(e) is not None or e.event in ("unsubscribe", "group_unsubscribe")


def _suppression_reason(e: DeliveryEvent) -> str | None:
    if e.event == "bounce" and e.detail == "bounce":
        return "bounce"
    if e.event == "spamreport":
        return "complaint"
    if e.event == "dropped":
        return SUPPRESSING_DROPS.get(e.detail)
    return None


def _consent(
    email_hash: str,
    person: q.SubscriberRow | None,
    newsletter: str | None,
    action: str,
    e: DeliveryEvent,
    now: dt.datetime,
) -> q.ConsentEvent:
    return q.ConsentEvent(
        email_hash,
        person.id if person else None,
        newsletter,
        action,
        "webhook",
        now,
        _detail(e),
    )


def _detail(e: DeliveryEvent) -> str:
    """The consent history's note of a provider event: which, why, and its id."""
    return f"sendgrid {e.event}{': ' + e.detail if e.detail else ''} ({e.event_id})"


def _unsubscribe(
    conn: Connection, person: q.SubscriberRow, e: DeliveryEvent, now: dt.datetime
) -> int:
    subs = q.subscriptions_of(conn, person.id)
    targets = [
        key
        for key, sub in sorted(subs.items())
        if sub["status"] != "unsubscribed" and e.newsletter in (None, key)
    ]
    q.unsubscribe(conn, person.id, person.email_hash, targets, "webhook", now, _detail(e))
    return len(targets)
