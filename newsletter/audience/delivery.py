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

The same rules take the bounces of the SMTP backend (#14), so the lists and `stats` are one
system whatever the backend: an SMTP server's immediate refusal (source "smtp") and what
`bounces process` reads from the bounce mailbox (source "mailbox") become events of the same
names: `bounce` of detail `bounce` (a hard bounce: suppressed), `soft` (a transient failure)
or `blocked` (refused for the message's sake: stored only), `spamreport` (an ARF complaint:
suppressed) and `deferred` (a delayed-delivery notice: stored only). An address with
`soft_limit` soft bounces within `soft_days` days is suppressed as "soft-bounce".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from newsletter.audience import addresses, bounces
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
    diagnostic: str = ""  # RFC 3463 status and the server's words (SMTP and mailbox bounces)
    source: str = "sendgrid"  # sendgrid | smtp | mailbox

    @property
    def newsletter(self) -> str | None:
        return self.issue.split("/", 1)[0] if self.issue else None


@dataclass(frozen=True)
class SoftRule:
    """N transient failures over M days suppress an address ([bounces] soft_limit, soft_days)."""

    limit: int = 5
    days: int = 14


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


def record(
    store: Store,
    events: list[DeliveryEvent],
    now: dt.datetime | None = None,
    soft: SoftRule | None = None,
) -> Recorded:
    """Store the events (once each) and apply the new ones to the lists, in one transaction:
    the webhook answers 2xx only after this returns."""
    with store.begin() as conn:
        return apply(conn, events, now or dt.datetime.now(dt.UTC), soft)


def apply(
    conn: Connection, events: list[DeliveryEvent], now: dt.datetime, soft: SoftRule | None = None
) -> Recorded:
    """`record` inside the caller's transaction (a send's outcomes, a bounce message)."""
    suppressed = unsubscribed = 0
    soft = soft or SoftRule()
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
            "diagnostic": e.diagnostic,
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
        if email_hash and sent_to is None:  # named by id alone (a VERP token): count it theirs
            eq.set_email_hash(conn, e.event_id, email_hash)
        reason = _suppression_reason(e)
        if reason is None and _is_soft(e) and email_hash:
            since = e.occurred_at - dt.timedelta(days=soft.days)
            if eq.soft_bounces(conn, email_hash, since) >= soft.limit:
                reason = "soft-bounce"
        if reason and email_hash:
            if not q.suppressed(conn, [email_hash]):
                q.suppress(conn, [q.Suppression(email_hash, reason, f"{e.source}:{e.event}", now)])
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
    return (
        _suppression_reason(e) is not None
        or _is_soft(e)
        or e.event in ("unsubscribe", "group_unsubscribe")
    )


def _is_soft(e: DeliveryEvent) -> bool:
    return e.event == "bounce" and e.detail == "soft"


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
        METHODS.get(e.source, e.source),
        now,
        _detail(e),
    )


METHODS = {"sendgrid": "webhook", "smtp": "smtp-refusal", "mailbox": "bounce-mailbox"}


def _detail(e: DeliveryEvent) -> str:
    """The consent history's note of a provider event: which, why, and its id."""
    why = f"{e.detail} {e.diagnostic}".strip() if e.diagnostic else e.detail
    return f"{e.source} {e.event}{': ' + why if why else ''} ({e.event_id})"[:1000]


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


def smtp_refusal(
    issue: str,
    subscriber_id: int,
    email: str,
    code: int,
    reply: str,
    permanent: bool,
    now: dt.datetime,
) -> DeliveryEvent:
    """An SMTP server's refusal of a recipient as a delivery event: by RFC 3463, a hard
    bounce (5.1.x: suppressed), a blocked message (5.7.x…) or a soft bounce (4xx, counted)."""
    status = bounces.status_of(reply)
    kind = bounces.severity(status, code) if permanent else "soft"
    return DeliveryEvent(
        event_id=f"smtp:{issue}:{subscriber_id}:{now.timestamp():.6f}",
        event="bounce",
        issue=issue,
        subscriber_id=subscriber_id,
        email=email,
        machine=False,
        url="",
        detail=_DETAIL[kind],
        provider_id="",
        occurred_at=now,
        diagnostic=reply[:500],
        source="smtp",
    )


_DETAIL = {"hard": "bounce", "soft": "soft", "blocked": "blocked", "delayed": "delayed"}


WORST_FIRST = {"hard": 0, "soft": 1, "blocked": 2, "delayed": 3}


def mailbox_events(c: bounces.Classified, now: dt.datetime) -> list[DeliveryEvent]:
    """A bounce-mailbox message as delivery events (none for an auto-reply or a report that
    is not a complaint). Our messages have one recipient each: with a VERP token, the one
    subscriber it names (the signed token wins over whatever address the report shows: a
    forwarded mailbox reports its final address), with its worst failure; without one, each
    address the report names, once."""
    base = "mail:" + hashlib.sha256(c.message_id.encode()).hexdigest()[:40]
    token = c.token
    when = c.occurred_at or now
    if c.kind == "complaint":
        email = "" if token else c.complainant
        return [_mail_event(f"{base}:0", "spamreport", c.feedback_type, "", email, c, when)]
    if c.kind != "bounce":
        return []
    failures = sorted(c.failures, key=lambda f: WORST_FIRST[f.severity])
    if token:
        failures = failures[:1]
    seen: set[str] = set()
    events = []
    for n, f in enumerate(failures):
        if not token and (not f.email or f.email.lower() in seen):
            continue
        seen.add(f.email.lower())
        event = "deferred" if f.severity == "delayed" else "bounce"
        why = " ".join(x for x in (f.status, f.diagnostic or c.how) if x)
        if token and f.email:
            why = f"{f.email}: {why}"
        events.append(
            _mail_event(
                f"{base}:{n}", event, _DETAIL[f.severity], why, "" if token else f.email, c, when
            )
        )
    return events


def _mail_event(
    event_id: str,
    event: str,
    detail: str,
    diagnostic: str,
    email: str,
    c: bounces.Classified,
    when: dt.datetime,
) -> DeliveryEvent:
    return DeliveryEvent(
        event_id=event_id,
        event=event,
        issue=c.issue,
        subscriber_id=c.token.subscriber_id if c.token else None,
        email=email,
        machine=False,
        url="",
        detail=detail,
        provider_id=c.message_id[:255],
        occurred_at=when,
        diagnostic=diagnostic[:500],
        source="mailbox",
    )
