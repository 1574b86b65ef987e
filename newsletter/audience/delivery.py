"""SendGrid's Event Webhook: verify a request, read its events, store each once, act on them.

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

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from newsletter.audience import addresses
from newsletter.config import Environment
from newsletter.errors import NewsletterError
from newsletter.store import Connection, Store
from newsletter.store import events as eq
from newsletter.store import people as q

KEY_ENV = "SENDGRID_WEBHOOK_VERIFICATION_KEY"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FUTURE_SKEW = 300  # seconds a timestamp may be ahead of our clock

SUPPRESSING_DROPS = {
    "Bounced Address": "bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribed",
}
_ISSUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}/\d{4}-\d{2}-\d{2}$")


class WebhookKeyError(NewsletterError):
    """The configured verification key cannot be read."""


class SignatureError(Exception):
    """Why a request was refused (shown to nobody but the log: the answer is a bare 403)."""


class PayloadError(Exception):
    """A signed body that is not a JSON list of event objects."""


class Verifier:
    """Checks SendGrid's ECDSA P-256 signature over timestamp + raw body, with the sendgrid
    library's helper, and that the timestamp is inside the window."""

    def __init__(self, public_key: str, max_age: int, clock: Callable[[], float] = time.time):
        from sendgrid.helpers.eventwebhook import EventWebhook

        self._helper = EventWebhook()
        try:
            self._key = self._helper.convert_public_key_to_ecdsa(public_key.strip())
        except (ValueError, TypeError, binascii.Error):
            raise WebhookKeyError(
                "the SendGrid webhook verification key is not a base64 public key "
                "(copy it from SendGrid: Settings → Mail Settings → Event Webhook)"
            ) from None
        from cryptography.hazmat.primitives.asymmetric import ec

        if not isinstance(self._key, ec.EllipticCurvePublicKey):
            raise WebhookKeyError("the SendGrid webhook verification key is not an EC key")
        self.max_age = max_age
        self.clock = clock

    def check(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        if not signature or not timestamp:
            raise SignatureError("missing signature or timestamp header")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureError("malformed timestamp")
        age = self.clock() - int(timestamp)
        if age > self.max_age or age < -FUTURE_SKEW:
            raise SignatureError(f"timestamp outside the window ({int(age)} s old)")
        try:
            base64.b64decode(signature, validate=True)
            payload = body.decode("utf-8")
        except (binascii.Error, ValueError):
            raise SignatureError("malformed signature or body") from None
        try:
            valid = self._helper.verify_signature(payload, signature, timestamp, self._key)
        except (ValueError, TypeError, binascii.Error):
            valid = False
        if not valid:
            raise SignatureError("signature does not verify")


def verification_key(configured: str | None) -> str | None:
    """The environment's key wins over the configuration's."""
    return Environment().sendgrid_webhook_verification_key() or configured or None


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


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def parse(body: bytes, now: dt.datetime) -> list[DeliveryEvent]:
    """The events of one request; PayloadError if it is not a list of objects."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the body is not JSON") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise PayloadError("the body is not a list of event objects")
    return [_event(raw, now) for raw in data]


def _event(raw: dict[str, Any], now: dt.datetime) -> DeliveryEvent:
    event_id = _text(raw.get("sg_event_id"), 128)
    if not event_id:  # never seen from SendGrid, but a stable id keeps storage idempotent
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        event_id = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:48]
    issue = raw.get("nl_issue")
    subscriber = raw.get("nl_subscriber")
    stamp = raw.get("timestamp")
    try:
        occurred = dt.datetime.fromtimestamp(int(stamp), dt.UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        occurred = now
    kind = _text(raw.get("event"), 32) or "unknown"
    detail = ""
    if kind == "bounce":
        detail = _text(raw.get("type"), 32) or "bounce"
    elif kind == "dropped":
        detail = _text(raw.get("reason"), 200)
    elif kind == "deferred":
        detail = _text(raw.get("response"), 200)
    return DeliveryEvent(
        event_id=event_id,
        event=kind,
        issue=issue if isinstance(issue, str) and _ISSUE.match(issue) else None,
        subscriber_id=int(subscriber)
        if isinstance(subscriber, str) and subscriber.isdigit() and len(subscriber) < 13
        else None,
        email=_text(raw.get("email"), 320),
        machine=raw.get("sg_machine_open") is True,
        url=_text(raw.get("url"), 2048) if kind == "click" else "",
        detail=detail,
        provider_id=_text(raw.get("sg_message_id"), 255),
        occurred_at=occurred,
    )


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
        f"sendgrid {e.event}{': ' + e.detail if e.detail else ''} ({e.event_id})",
    )


def _unsubscribe(
    conn: Connection, person: q.SubscriberRow, e: DeliveryEvent, now: dt.datetime
) -> int:
    subs = q.subscriptions_of(conn, person.id)
    targets = [
        key
        for key, sub in sorted(subs.items())
        if sub["status"] != "unsubscribed" and e.newsletter in (None, key)
    ]
    for key in targets:
        q.set_status(conn, person.id, key, "unsubscribed", "webhook", now, existed=True)
    q.record(
        conn, [_consent(person.email_hash, person, key, "unsubscribed", e, now) for key in targets]
    )
    return len(targets)
