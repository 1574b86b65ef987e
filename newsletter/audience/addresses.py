"""Email addresses: validated by email-validator, stored as given, matched by a key.

The key (`model.key_of`, the one rule) is what makes two spellings one subscriber: the address
Unicode-normalised (NFC) as email-validator normalises it, the domain lowercased and the
local part case-folded too. RFC 5321 lets a mailbox tell `Zoe` from `zoe`, but no major
provider does, and every ESP matches them as one: suppression, erasure, the sign-up limit
and duplicate detection must, or an erased reader comes back by a change of case. The
address itself is stored and sent as given. The hash of the key is what the suppression list
keeps, so an erased address stays blocked without being stored.

Before schema revision 0006 the local part kept its case in the key: a suppression made
then of an address no longer stored (an erasure) could not be re-keyed, so it is still
matched by that old hash (`Address.hashes`).

Most addresses are plain ASCII: a strict regular expression recognises those that
email-validator is certain to accept (checked against it in the tests), which makes a
million-row import several times faster. Anything else goes through email-validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.model import hash_key, key_of

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
    key: str  # what identifies the subscriber: `key_of` the normalised address
    hash: str  # sha256 of the key: what the suppression list keeps
    legacy_hash: str | None = None  # the pre-0006 key's hash, when it differs

    @property
    def hashes(self) -> tuple[str, ...]:
        """Every hash a suppression of this address may be kept under."""
        return (self.hash,) if self.legacy_hash is None else (self.hash, self.legacy_hash)


def _plain(email: str) -> str | None:
    """The normalised form of an ASCII address email-validator would accept as is, else
    None."""
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
    normalized = None if check_deliverability else _plain(email)
    if normalized is None:
        from email_validator import EmailNotValidError, validate_email

        try:
            result = validate_email(email, check_deliverability=check_deliverability)
        except EmailNotValidError as exc:
            raise InvalidAddress(str(exc)) from None
        normalized = result.normalized
    key = key_of(normalized)
    legacy = hash_key(normalized) if normalized != key else None
    return Address(email, key, hash_key(key), legacy)
