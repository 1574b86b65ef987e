"""SendGrid's Event Webhook, the provider's side: verify a request's signature, and read its
body into `DeliveryEvent`s. What the events then do to the lists is `audience.delivery`'s.

Events are matched to an issue and a subscriber by the opaque `custom_args` the send put on
each message (`nl_issue`, `nl_subscriber`), never by address; an event without an id gets a
stable one, so that storing it stays idempotent.
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
from typing import Any

from newsletter.audience.delivery import DeliveryEvent
from newsletter.config import Environment
from newsletter.errors import WebhookKeyError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FUTURE_SKEW = 300  # seconds a timestamp may be ahead of our clock

_ISSUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}/\d{4}-\d{2}-\d{2}$")


class SignatureError(Exception):
    """Why a request was refused (shown to nobody but the log: the answer is a bare 403)."""


class PayloadError(Exception):
    """A signed body that is not a JSON list of event objects."""


class Verifier:
    """Checks SendGrid's ECDSA P-256 signature over timestamp + raw body, with the sendgrid
    library's helper, and that the timestamp is inside the window."""

    def __init__(self, public_key: str, max_age: int, clock: Callable[[], float] = time.time):
        from sendgrid.helpers.eventwebhook import EventWebhook

        self._helper: Any = EventWebhook()  # the library has no types
        try:
            self._key: Any = self._helper.convert_public_key_to_ecdsa(public_key.strip())
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
