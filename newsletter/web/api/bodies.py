"""What callers send, read and checked before anything is done: a 400 for a body that is
not JSON, a 422 naming the field for anything else wrong. Text that a database would
choke on (a NUL, a lone surrogate) is refused here, so it is never a 500."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from newsletter.audience.profiles import TIERS, SignupRequest
from newsletter.errors import ApiRefused
from newsletter.model import NAME_MAX

SOURCE_MAX = 200
STATUSES = ("subscribed", "pending", "unsubscribed", "suppressed")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"  # the same rule, for the OpenAPI document


def _invalid(field: str, message: str) -> ApiRefused:
    return ApiRefused("invalid", f"{field}: {message}", field)


def document(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiRefused("bad_request", "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiRefused("invalid", "the request body must be a JSON object", "body")
    return data


def _unknown(data: Mapping[str, Any], known: Iterable[str]) -> None:
    extra = sorted(set(data) - set(known))
    if extra:
        raise _invalid(extra[0], "no such field")


def text(data: Mapping[str, Any], field: str, limit: int) -> str | None:
    if field not in data:
        return None
    value = data[field]
    if not isinstance(value, str):
        raise _invalid(field, "must be a string")
    return checked_text(value, field, limit)


def checked_text(value: str, field: str, limit: int) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(field, "is not valid Unicode text") from None
    if _CONTROL.search(value):
        raise _invalid(field, "must not contain control characters")
    if len(value) > limit:
        raise _invalid(field, f"is {len(value)} characters: over {limit}")
    return value


def _flag(data: Mapping[str, Any], field: str) -> bool:
    value = data.get(field, False)
    if not isinstance(value, bool):
        raise _invalid(field, "must be true or false")
    return value


def _tier(data: Mapping[str, Any]) -> str | None:
    if "tier" not in data:
        return None
    value = data["tier"]
    if value not in TIERS:
        raise _invalid("tier", f"must be one of {', '.join(TIERS)}")
    return str(value)


def newsletter_key(value: object, offered: Iterable[str], field: str) -> str:
    keys = sorted(offered)
    if not isinstance(value, str) or value not in keys:
        shown = f"'{value}'" if isinstance(value, str) and len(value) < 80 else "this"
        raise _invalid(field, f"{shown} is not a newsletter: {', '.join(keys)}")
    return value


def signup(raw: bytes, offered: Iterable[str]) -> SignupRequest:
    """The body of POST /api/v1/subscribers."""
    data = document(raw)
    _unknown(data, ("email", "name", "tier", "newsletters", "confirmed", "resubscribe", "source"))
    email = data.get("email")
    if not isinstance(email, str):
        raise _invalid("email", "required, a string")
    checked_text(email, "email", 320)
    chosen = data.get("newsletters")
    if not isinstance(chosen, list) or not chosen:
        raise _invalid("newsletters", "required, a list of at least one newsletter")
    keys = list(offered)
    newsletters = [newsletter_key(k, keys, "newsletters") for k in chosen]
    return SignupRequest(
        email=email,
        newsletters=newsletters,
        name=text(data, "name", NAME_MAX),
        tier=_tier(data),
        confirmed=_flag(data, "confirmed"),
        resubscribe=_flag(data, "resubscribe"),
        source=text(data, "source", SOURCE_MAX),
    )


def change(raw: bytes, offered: Iterable[str]) -> dict[str, Any]:
    """The body of PATCH /api/v1/subscribers/{id}: tier, name, newsletters."""
    data = document(raw)
    _unknown(data, ("tier", "name", "newsletters"))
    changes = data.get("newsletters", {})
    if not isinstance(changes, dict):
        raise _invalid("newsletters", 'an object like {"daily": "unsubscribed"}')
    keys = list(offered)
    for key, value in changes.items():
        newsletter_key(key, keys, "newsletters")
        if value not in ("subscribed", "unsubscribed"):
            raise _invalid(f"newsletters.{key}", "must be subscribed or unsubscribed")
    return {"tier": _tier(data), "name": text(data, "name", NAME_MAX), "newsletters": changes}


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise _invalid("Idempotency-Key", "1 to 200 visible ASCII characters")
    return value


def subscriber_id(raw: str) -> int:
    """A path's id; anything else (or an id no database holds) is no subscriber: 404."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:
        raise ApiRefused("not_found", "no such subscriber")
    return int(raw)


def since(raw: str | None) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError
        return value.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise _invalid(
            "updated_since", "a date and time with its offset, like 2025-05-14T06:00:00Z"
        ) from None


def make_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{after}".encode()).decode().rstrip("=")


def cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    version, _, after = text.partition(":")
    if version != "v1" or not after.isdigit() or len(after) > 10:
        raise _invalid("cursor", "not a cursor this API gave (use next_cursor as it is)")
    return int(after)


def limit(raw: str | None, default: int, most: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:6]) <= most or len(raw) > 6:
        raise _invalid("limit", f"a whole number from 1 to {most}")
    return int(raw)
