"""The CSV files subscribers come in: our own export, and those of Mailchimp, Substack and
listmonk. A header row names the columns; each known spelling maps to one meaning, and every
status column is honoured, so that nobody who left is imported as a subscriber.

| meaning | column names (any case) |
|---|---|
| email | email, email address (Mailchimp), e-mail |
| name | name, full name; or first name + last name (Mailchimp: First Name, Last Name) |
| tier | tier (free/premium); Substack: active_subscription true → premium |
| newsletter | newsletter (our export: one row per subscriber and newsletter) |
| status | status (ours: subscribed/pending/unsubscribed; listmonk: enabled/disabled/…), |
| | subscribed (true/false) |
| suppression | suppressed (ours: the reason); Mailchimp's cleaned export (CLEAN_TIME); |
| | listmonk's blocklisted |
| unsubscribed | Mailchimp's unsubscribed export (UNSUB_TIME); Substack email_disabled = true |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from newsletter.model import NAME_MAX

Status = Literal["subscribed", "pending", "unsubscribed"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_COLUMNS = {
    "email": (
        "email",
        "email address",
        "e-mail",
        "e-mail address",
        "email_address",
        "emailaddress",
    ),
    "name": ("name", "full name", "full_name", "fullname"),
    "first_name": ("first_name", "first name", "firstname", "fname", "given name"),
    "last_name": ("last_name", "last name", "lastname", "lname", "family name", "surname"),
    "tier": ("tier",),
    "newsletter": ("newsletter",),
    "status": ("status",),
    "subscribed": ("subscribed",),
    "suppressed": ("suppressed",),
    "attributes": ("attributes",),
    "mailchimp_unsub": ("unsub_time",),
    "mailchimp_clean": ("clean_time",),
    "substack_active": ("active_subscription",),
    "substack_disabled": ("email_disabled",),
}
_STATUS_WORDS: dict[str, Status | tuple[Literal["suppress"], str]] = {
    "subscribed": "subscribed",
    "active": "subscribed",
    "enabled": "subscribed",
    "confirmed": "subscribed",
    "opted-in": "subscribed",
    "opted in": "subscribed",
    "pending": "pending",
    "unconfirmed": "pending",
    "unsubscribed": "unsubscribed",
    "inactive": "unsubscribed",
    "disabled": "unsubscribed",
    "cleaned": ("suppress", "bounce"),
    "bounced": ("suppress", "bounce"),
    "hard_bounce": ("suppress", "bounce"),
    "blocklisted": ("suppress", "blocklisted"),
    "blacklisted": ("suppress", "blocklisted"),
    "blocked": ("suppress", "blocklisted"),
    "complained": ("suppress", "complaint"),
    "spam": ("suppress", "complaint"),
}
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
MAX_ATTRIBUTE_DEPTH = 20  # deeper JSON is a RecursionError in json, and later in the store
SUPPRESSION_REASONS = ("bounce", "complaint", "blocklisted", "erased", "manual")


class RowError(ValueError):
    """Why one row cannot be imported."""


class FormatError(ValueError):
    """Why the file as a whole cannot be imported."""


@dataclass
class Row:
    email: str
    name: str = ""
    tier: str | None = None
    newsletter: str | None = None
    status: Status = "subscribed"
    suppress: str | None = None  # a suppression reason
    attributes: dict[str, object] = field(default_factory=dict)


def _depth(value: object) -> int:
    """How deeply a parsed JSON value nests (without recursion: it may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def neutralise(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading quote; `restore` undoes it."""
    if value.startswith(FORMULA_START) or (
        value.startswith("'") and value[1:].startswith((*FORMULA_START, "'"))
    ):
        return "'" + value
    return value


def restore(value: str) -> str:
    if value.startswith("'") and value[1:].startswith((*FORMULA_START, "'")):
        return value[1:]
    return value


@dataclass
class Columns:
    """Which column index holds each meaning, from the header row."""

    index: dict[str, int]
    width: int

    @classmethod
    def from_header(cls, header: list[str]) -> Columns:
        names = [restore(h).strip().lower() for h in header]
        index: dict[str, int] = {}
        for meaning, spellings in _COLUMNS.items():
            for position, name in enumerate(names):
                if name in spellings and meaning not in index:
                    index[meaning] = position
        if "email" not in index:
            expected = ", ".join(f"'{s}'" for s in _COLUMNS["email"][:3])
            raise FormatError(f"no email column in the header (expected one of {expected})")
        return cls(index, len(header))

    def get(self, row: list[str], meaning: str) -> str:
        position = self.index.get(meaning)
        return restore(row[position].strip()) if position is not None else ""

    def parse(self, row: list[str]) -> Row:
        if len(row) != self.width:
            raise RowError(f"has {len(row)} fields, the header has {self.width}")
        cells = {meaning: restore(row[i].strip()) for meaning, i in self.index.items()}
        get = cells.get
        name = get("name") or " ".join(p for p in (get("first_name"), get("last_name")) if p)
        if len(name) > NAME_MAX:  # a name that long is a broken export, not a name
            raise RowError(f"name is {len(name)} characters: over {NAME_MAX} (shorten it)")
        out = Row(email=cells["email"], name=name)
        if tier := get("tier", "").lower():
            if tier not in ("free", "premium"):
                raise RowError(f"tier '{tier}' is not free or premium")
            out.tier = tier
        elif "substack_active" in cells:
            out.tier = "premium" if cells["substack_active"].lower() in _TRUE else "free"
        out.newsletter = get("newsletter") or None
        self._status(cells, out)
        if raw := get("attributes"):
            too_deep = f"attributes is nested more than {MAX_ATTRIBUTE_DEPTH} levels deep"
            try:
                attributes = json.loads(raw)
            except RecursionError:
                raise RowError(too_deep) from None
            except ValueError:
                raise RowError("attributes is not valid JSON") from None
            if not isinstance(attributes, dict):
                raise RowError("attributes must be a JSON object")
            if _depth(attributes) > MAX_ATTRIBUTE_DEPTH:
                raise RowError(too_deep)
            out.attributes = attributes
        return out

    @staticmethod
    def _status(cells: dict[str, str], out: Row) -> None:
        """Every status column is honoured; the strictest one wins."""
        get = cells.get
        if word := get("status", "").lower():
            meaning = _STATUS_WORDS.get(word)
            if meaning is None:
                raise RowError(
                    f"status '{word}' is not one of subscribed, pending, unsubscribed, "
                    "cleaned, bounced, blocklisted, complained"
                )
            if isinstance(meaning, tuple):  # cleaned, blocklisted…: left the list, and suppressed
                out.suppress, out.status = meaning[1], "unsubscribed"
            else:
                out.status = meaning
        if flag := get("subscribed", "").lower():
            if flag not in _TRUE | _FALSE:
                raise RowError(f"subscribed '{flag}' is not true or false")
            if flag in _FALSE:
                out.status = "unsubscribed"
        if get("mailchimp_unsub"):
            out.status = "unsubscribed"
        if get("substack_disabled", "").lower() in _TRUE:
            out.status = "unsubscribed"
        if get("mailchimp_clean"):
            out.suppress, out.status = "bounce", "unsubscribed"
        if reason := get("suppressed", "").lower():
            if reason not in SUPPRESSION_REASONS:
                raise RowError(
                    f"suppressed '{reason}' is not one of {', '.join(SUPPRESSION_REASONS)}"
                )
            out.suppress = reason
