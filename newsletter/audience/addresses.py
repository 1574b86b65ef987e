"""Email addresses: validated by email-validator, stored as given, matched by a key.

The key is what makes two spellings one subscriber: the domain lowercased and the whole
address Unicode-normalised (NFC), as email-validator normalises it; the local part keeps
its case (RFC 5321). The hash of the key is what the suppression list keeps, so an erased
address stays blocked without being stored.

Most addresses are plain ASCII: a strict regular expression recognises those that
email-validator is certain to accept (checked against it in the tests), which makes a
million-row import several times faster. Anything else goes through email-validator.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_LENGTH = 254
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


class InvalidAddress(ValueError):
    """The reason an address is not valid, in email-validator's words."""


@dataclass(frozen=True)
class Address:
    email: str  # as given, trimmed
    key: str  # what identifies the subscriber
    hash: str  # sha256 of the key: what the suppression list keeps


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _plain(email: str) -> str | None:
    """The key of an ASCII address email-validator would accept as is, else None."""
    m = _PLAIN.fullmatch(email)
    if not m or len(email) > MAX_LENGTH or len(m.group(1)) > 64:
        return None
    domain = m.group(2).lower()
    if "--" in domain or domain.rsplit(".", 1)[-1] in _SPECIAL_USE:  # "ab--" labels: IDNA rules
        return None
    return f"{m.group(1)}@{domain}"


def parse(raw: str, check_deliverability: bool = False) -> Address:
    """Validate one address; raise InvalidAddress with the reason."""
    email = raw.strip()
    if not email:
        raise InvalidAddress("no email address")
    key = None if check_deliverability else _plain(email)
    if key is None:
        from email_validator import EmailNotValidError, validate_email

        try:
            result = validate_email(email, check_deliverability=check_deliverability)
        except EmailNotValidError as exc:
            raise InvalidAddress(str(exc)) from None
        key = result.normalized
    return Address(email, key, hash_key(key))
