"""Signed tokens for the links in an email: unsubscribe, preferences, confirm, data.

HMAC-SHA256 (itsdangerous), one salt per purpose so a token made for one purpose never
verifies for another. The payload names the subscriber by id, then the words the link is
for: the newsletter (unsubscribe), the newsletters a confirmation email named (confirm:
it confirms those and nothing else), or the action a data link allows (data: "download"
or "delete"). No email address is readable in it. Unsubscribe and preferences tokens do not
expire (an unsubscribe link in a two-year-old email must still work); confirm tokens expire
after days, data tokens after an hour (they give away or erase everything on a reader).

The secret comes from NEWSLETTER_SECRET, or from the workspace's untracked `.secrets` file
that `newsletter init` (or `newsletter secret`) creates. It is never printed. (The forms' CSRF
tokens, signed with the same secret, belong to `web.security`.)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets as random_secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from newsletter.config import SECRET_ENV, Environment
from newsletter.errors import SecretError, TokenError

Purpose = Literal["unsubscribe", "preferences", "confirm", "data"]
PURPOSES: tuple[Purpose, ...] = ("unsubscribe", "preferences", "confirm", "data")
SECRET_FILE = ".secrets"
MIN_SECRET = 32
CONFIRM_MAX_AGE = 7 * 24 * 3600
DATA_MAX_AGE = 3600
MAX_NAMES = 32


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    names: tuple[str, ...] = ()  # the words after the id: newsletter keys, or an action

    @property
    def newsletter(self) -> str | None:
        """The one newsletter an unsubscribe link names (None unless exactly one)."""
        return self.names[0] if len(self.names) == 1 else None


def load_secret(workspace_root: Path) -> str:
    """NEWSLETTER_SECRET, else the workspace's .secrets file; a clear error if neither."""
    secret = Environment().secret()
    value = secret.get_secret_value() if secret else None
    source = SECRET_ENV
    if not value:
        path = workspace_root / SECRET_FILE
        source = str(path)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SecretError(
                f"no secret to sign unsubscribe links with: set {SECRET_ENV}, or run "
                f"'newsletter secret' to create {SECRET_FILE} in the workspace (keep it out of git)"
            ) from None
    if len(value) < MIN_SECRET:
        raise SecretError(
            f"the secret in {source} is too short: use at least {MIN_SECRET} characters"
        )
    return value


def create_secret_file(workspace_root: Path) -> Path | None:
    """Write a new random .secrets (mode 600) unless one exists; the path if written."""
    path = workspace_root / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(random_secrets.token_urlsafe(48) + "\n")
    return path


_WORD = r"[a-z0-9][a-z0-9_-]{0,63}"
_PAYLOAD = re.compile(rf"^(\d{{1,12}})((?:\.{_WORD}){{0,{MAX_NAMES}}})$")
_WORD_RE = re.compile(rf"^{_WORD}$")


class Mac:
    """HMAC-SHA256 under one key, keyed once. OpenSSL 3 looks the algorithm up again on
    every one-shot `hmac.digest` or `hmac.new` (~10 µs); a copy of the keyed object costs
    ~1.5 µs, and a send makes three a recipient (#16). Thread-safe: the copy holds the
    object's lock."""

    def __init__(self, key: bytes):
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, data: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(data)
        return mac.digest()


class Signer:
    """Tokens look like `42.daily.<timestamp>.<signature>`: the subscriber's id and the
    newsletter key, an itsdangerous timestamp signature (HMAC-SHA256, key derived per
    purpose). A send makes two per recipient, so the derived keys are computed once."""

    def __init__(self, secret: str, clock: Callable[[], float] | None = None):
        # time.time looked up at each call: tests move time
        tick: Callable[[], float] = clock or (lambda: time.time())
        from itsdangerous import TimestampSigner

        class _KeyOnce(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(tick())

            def derive_key(self, secret_key: Any = None) -> bytes:
                # once per key: unsign passes each of its keys explicitly (a one-click
                # spent 0.2 ms deriving the same key again, #16)
                derived: dict[Any, bytes] = self.__dict__.setdefault("_derived", {})
                if secret_key not in derived:
                    derived[secret_key] = super().derive_key(secret_key)
                return derived[secret_key]

        from itsdangerous.encoding import base64_encode, int_to_bytes

        self._signers = {
            purpose: _KeyOnce(secret, salt=f"newsletter.{purpose}", digest_method=hashlib.sha256)
            for purpose in PURPOSES
        }
        self.clock = tick
        self._macs = {
            purpose: Mac(signer.derive_key()) for purpose, signer in self._signers.items()
        }
        self._b64 = base64_encode
        self._stamped = (-1, "")  # the timestamp of the last second a token was made in
        self._int_to_bytes = int_to_bytes

    def make(
        self,
        purpose: Purpose,
        subscriber_id: int,
        newsletter: str | None = None,
        *,
        names: Sequence[str] = (),
    ) -> str:
        """The same bytes as itsdangerous' TimestampSigner.sign (which reads them back), built
        with its own helpers but without its per-call overhead: a send makes millions.
        `names` are the words of a confirm or data token (checked: they must read back)."""
        if names:
            words = [newsletter, *names] if newsletter else list(names)
            if len(words) > MAX_NAMES or not all(_WORD_RE.match(w) for w in words):
                raise ValueError(f"a token cannot carry {words!r}")
            payload = ".".join([str(subscriber_id), *words])
        else:
            payload = f"{subscriber_id}.{newsletter}" if newsletter else str(subscriber_id)
        second = int(self.clock())
        stamped = self._stamped  # one attribute: the send's threads share it
        if stamped[0] != second:  # a send makes thousands of tokens in one second
            stamped = self._stamped = (second, self._b64(self._int_to_bytes(second)).decode())
        value = f"{payload}.{stamped[1]}"
        mac = self._macs[purpose].digest(value.encode())
        return f"{value}.{self._b64(mac).decode()}"

    def read(self, purpose: Purpose, token: str, max_age: int | None = None) -> TokenData:
        from itsdangerous import BadData, SignatureExpired

        if max_age is None and purpose == "confirm":
            max_age = CONFIRM_MAX_AGE
        if purpose == "data":  # never longer than an hour, whatever the caller asks
            max_age = min(max_age or DATA_MAX_AGE, DATA_MAX_AGE)
        try:
            payload = self._signers[purpose].unsign(token, max_age=max_age).decode("ascii")
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except (BadData, ValueError, TypeError, UnicodeError):
            raise TokenError("this link is not valid") from None
        m = _PAYLOAD.match(payload)
        if m is None:
            raise TokenError("this link is not valid")
        words = m.group(2)
        return TokenData(int(m.group(1)), tuple(words[1:].split(".")) if words else ())


class Stamp:
    """itsdangerous' timestamped HMAC-SHA256 signature under one salt, on a given clock: the
    primitive under the link tokens, lent to `web.security` for the forms' CSRF tokens (this
    module is itsdangerous' one owner)."""

    def __init__(self, secret: str, salt: str, clock: Callable[[], float]):
        from itsdangerous import TimestampSigner

        class _Clocked(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._signer = _Clocked(secret, salt=salt, digest_method=hashlib.sha256)

    def sign(self, value: str) -> str:
        return self._signer.sign(value).decode("ascii")

    def unsign(self, token: str, max_age: int) -> bytes | None:
        """The signed value; None if the token is bad, for another salt, or older than max_age."""
        from itsdangerous import BadData

        try:
            return self._signer.unsign(token, max_age=max_age)
        except (BadData, ValueError, TypeError, UnicodeError):
            return None


# -- VERP: the bounce address of one message ---------------------------------------------------

_VERP = re.compile(r"^(\d{1,12})\.([a-z0-9][a-z0-9_-]{0,63})\.(\d{8})\.([a-z2-7]{13})$")


@dataclass(frozen=True)
class BounceToken:
    """What a bounce to a VERP address names: the issue ("daily/2026-01-05") and the
    subscriber it was sent to."""

    issue: str
    subscriber_id: int


_MESSAGE_ID = re.compile(
    r"^<?([a-z0-9][a-z0-9_-]{0,63})\.(\d{8})\.(\d{1,12})\.([0-9a-f]{12})@[^<>@\s]+>?$"
)


class MessageIds:
    """Each recipient's Message-ID, `<newsletter.yyyymmdd.subscriber.mac@domain>`: unique,
    the same every time for one (issue, subscriber), and signed (48 bits of HMAC-SHA256
    under the secret), so that a report that carries our message's headers but not its
    recipient (a feedback loop that redacts the address, a bounce to another tool's return
    path) still names the subscriber, and nobody can make it name another."""

    def __init__(self, secret: str):
        self._mac = Mac(secret.encode())

    def _sign(self, issue: str, subscriber_id: int) -> str:
        return self._mac.digest(f"{issue}:{subscriber_id}".encode()).hex()[:12]

    def make(self, issue: str, subscriber_id: int, domain: str) -> str:
        newsletter, _, date = issue.partition("/")
        local = f"{newsletter}.{date.replace('-', '')}.{subscriber_id}"
        return f"<{local}.{self._sign(issue, subscriber_id)}@{domain}>"

    def read(self, message_id: str) -> BounceToken | None:
        """The issue and subscriber a Message-ID of ours names; None for anyone else's or a
        forged one."""
        m = _MESSAGE_ID.match(message_id.strip().lower())
        if m is None:
            return None
        d = m.group(2)
        issue, subscriber_id = f"{m.group(1)}/{d[:4]}-{d[4:6]}-{d[6:]}", int(m.group(3))
        if not hmac.compare_digest(self._sign(issue, subscriber_id), m.group(4)):
            return None
        return BounceToken(issue, subscriber_id)


class VerpSigner:
    """The token in a message's envelope sender, `bounces+<token>@domain`:
    `<subscriber id>.<newsletter>.<yyyymmdd>.<mac>`, the mac a truncated HMAC-SHA256 under a
    key of its own (salt "newsletter.bounce": no link token verifies as one, nor the other way)
    in lowercase base32, because MTAs may fold an address's case. It never expires (a bounce
    can come back days later) and carries no address. 64 bits of MAC: forging one means
    guessing, one SMTP message per guess."""

    def __init__(self, secret: str):
        key = hmac.new(secret.encode(), b"newsletter.bounce", hashlib.sha256).digest()
        self._key = Mac(key)

    def _mac(self, payload: str) -> str:
        import base64

        digest = self._key.digest(payload.encode())[:8]
        return base64.b32encode(digest).decode().rstrip("=").lower()

    def make(self, issue: str, subscriber_id: int) -> str:
        newsletter, _, date = issue.partition("/")
        payload = f"{subscriber_id}.{newsletter}.{date.replace('-', '')}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, token: str) -> BounceToken:
        """TokenError if the token is malformed or its MAC does not match."""
        m = _VERP.match(token.strip().lower())
        if m is None:
            raise TokenError("this bounce address is not valid")
        payload = token.strip().lower().rsplit(".", 1)[0]
        if not hmac.compare_digest(self._mac(payload), m.group(4)):
            raise TokenError("this bounce address is not valid")
        d = m.group(3)
        return BounceToken(f"{m.group(2)}/{d[:4]}-{d[4:6]}-{d[6:]}", int(m.group(1)))

    def address(self, bounce_address: str, issue: str, subscriber_id: int) -> str:
        """`local+<token>@domain` for a configured `local@domain`."""
        local, _, domain = bounce_address.rpartition("@")
        return f"{local}+{self.make(issue, subscriber_id)}@{domain}"

    def find(self, bounce_address: str, candidates: Sequence[str]) -> BounceToken | None:
        """The first valid token among addresses (Delivered-To, To…) at the bounce address."""
        local, _, domain = bounce_address.lower().rpartition("@")
        prefix, suffix = f"{local}+", f"@{domain}"
        for candidate in candidates:
            address = candidate.strip().strip("<>").lower()
            if address.startswith(prefix) and address.endswith(suffix):
                try:
                    return self.read(address[len(prefix) : -len(suffix)])
                except TokenError:
                    continue
        return None
