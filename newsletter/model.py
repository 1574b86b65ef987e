"""Only what both halves of the product share (the issue pipeline in build/; the audience
and sending in audience/ and send/); the issue file's model lives in `build.issue`.

`Tier` names an email variant and a subscriber's level; `Recipient` is what a send needs of
one subscriber; `issue_key` names an issue in the send journal and the stats; `AbsoluteUrl`
and `Text` are the field types that the issue-file model (`build.issue`) and the
configuration (`config`) both validate with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

NAME_MAX = 200  # characters of a subscriber's name: imports refuse more, messages cut it here
# the longest subject mail can carry: an ASCII Subject header is one line (never folded) of
# at most 998 octets, "Subject: " and a test send's "[TEST] " included (tests probe the writer)
SUBJECT_LIMIT = 998 - len("Subject: ") - len("[TEST] ")


class Tier(StrEnum):
    FREE = "free"
    PREMIUM = "premium"


def issue_key(newsletter: str, date: dt.date) -> str:
    """`<newsletter>/<date>`, like `daily/2025-05-14`: how both halves name one issue."""
    return f"{newsletter}/{date.isoformat()}"


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an absolute http(s) URL")
    if any(c.isspace() for c in value):
        raise ValueError(f"'{value}' contains spaces")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
Text = Annotated[str, AfterValidator(_not_blank)]


@dataclass(frozen=True)
class Recipient:
    """What a send needs of one subscriber."""

    id: int
    email: str
    name: str
    tier: str


def key_of(normalized: str) -> str:
    """The matching key of an address in email-validator's normalised form (which is also
    the pre-0006 key): the one rule, for every lookup (audience.addresses) and for the
    migration that re-keys the store; case-folded in the local part too, as mailbox
    providers and ESPs treat addresses."""
    local, _, domain = normalized.rpartition("@")
    return f"{unicodedata.normalize('NFC', local.casefold())}@{domain.lower()}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
