"""Per-recipient messages, assembled from a per-tier skeleton built once.

The MIME structure, headers common to every reader and the bodies with their placeholders
are prepared once per tier; for each recipient only the placeholders are filled, the two
bodies quoted-printable encoded (binascii: C speed) and the few personal headers written.
Building each message with `email.message.EmailMessage` would cost ~10 ms each (its pure
Python quoted-printable encoder), capping a core at ~100 messages/s.

This is the only MIME builder: notices (the sign-up confirmation, `notice_data`) are
assembled from the same pieces as issues. Every header of both is written by `header`, which
lets no CR, LF or other control character through: a name or subject cannot inject a header;
a long display name is cut at `NAME_MAX` and folded as RFC 2047 encoded words, so no name
can make a line too long to send.
List-Unsubscribe is written literally (`<https://…>, <mailto:…>`): Python's email policies
fold or RFC 2047 encode a long URL, which breaks one-click unsubscribe at the mailbox providers.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from typing import TYPE_CHECKING

from newsletter import placeholders
from newsletter.audience.tokens import MessageIds, Signer, VerpSigner
from newsletter.config import Config
from newsletter.errors import MessageError
from newsletter.model import NAME_MAX, Recipient, Tier

if TYPE_CHECKING:
    from newsletter.audience.notices import Notice

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
MAX_LINE = 998


def clean(value: str) -> str:
    """One line of text: control characters (CR, LF, NUL, tab…) become a space."""
    return _CONTROL.sub(" ", value).strip()


def _encode(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 encoded words (folded by Header)."""
    value = clean(value)
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=76, linesep="\r\n")


@dataclass(frozen=True)
class Text:
    """Words for a person to read (a subject, a list's title): encoded when not ASCII."""

    words: str


@dataclass(frozen=True)
class Address:
    """A display name and an address (From, To, Reply-To)."""

    name: str
    email: str

    @classmethod
    def parse(cls, value: str) -> Address:
        """From the configuration's `Name <address>` form."""
        return cls(*parseaddr(value))


def _address(part: Address) -> str:
    """`Name <address>` on one line when it is short; else the name, cut at NAME_MAX, folded
    (a quoted string at its spaces, or RFC 2047 encoded words) and the address on its own
    line: no name can make the line too long to send."""
    name, email = clean(part.name)[:NAME_MAX].rstrip(), clean(part.email)
    plain = formataddr((name, email), charset="utf-8")
    if not name or len(plain) <= 72:
        return plain
    if name.isascii():  # a quoted string folded at its spaces (RFC 5322 FWS)
        lines = [""]
        for word in name.replace("\\", "\\\\").replace('"', '\\"').split():
            if lines[-1] and len(lines[-1]) + len(word) > 70:
                lines.append("")
            lines[-1] += (" " if lines[-1] else "") + word
        phrase = '"' + "\r\n ".join(lines) + '"'
    else:  # encoded words (RFC 2047), folded between them
        phrase = Header(name, "utf-8").encode(maxlinelen=76, linesep="\r\n")
    return f"{phrase}\r\n <{email}>"


def _wire(part: str | Text | Address) -> str:
    if isinstance(part, Address):
        return _address(part)
    if isinstance(part, Text):
        return _encode(part.words)
    return clean(part)


def header(name: str, *parts: str | Text | Address) -> bytes:
    """One header line, the only way one is written (issues and notices alike). Each part is
    made one line first, so no value can end the header or start another: `Text` is RFC 2047
    encoded (and folded) when not ASCII, an `Address` as `formataddr` writes it, and a plain
    str as it is, never folded. Parts are joined by a space."""
    value = " ".join(_wire(part) for part in parts)
    line = f"{name}: {value}\r\n".encode()
    longest = max(len(part) for part in line.split(b"\r\n"))
    if longest > MAX_LINE:
        raise MessageError(f"the {name} header is {longest} octets long: over {MAX_LINE}")
    return line


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (b2a_qp breaks a text with no line end by LF)."""
    encoded = binascii.b2a_qp(_crlf(text).encode("utf-8"), quotetabs=False, istext=True)
    return _BARE_LF.sub(b"\r\n", encoded)


SOFT_BREAK = b"=\r\n"  # a quoted-printable line break that decodes to nothing
Part = tuple[bytes, bool]  # a piece of a body, and whether every reader of the tier shares it


class QuotedTemplate:
    """A body with placeholders, quoted-printable encoded once: per recipient only the values
    are encoded. Each piece ends with a soft line break, so that pieces encoded apart join
    into valid quoted-printable (lines stay under 76 characters) that decodes to the text."""

    def __init__(self, text: str, for_html: bool):
        self.for_html = for_html
        self.pieces: list[bytes | str] = [
            piece if is_marker else _qp(piece) + SOFT_BREAK
            for piece, is_marker in placeholders.segments(_crlf(text))
        ]

    def fill(self, values: dict[str, str]) -> bytes:
        return b"".join(piece for piece, _ in self.parts(values))

    def parts(self, values: dict[str, str]) -> list[Part]:
        """The filled body as its pieces, each flagged shared (the same bytes object for
        every reader) or not; each is whole lines (it ends with a soft line break)."""
        out: list[Part] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append((piece, True))
            else:
                value = values[piece]
                encoded = _qp(html.escape(value, quote=True) if self.for_html else value)
                out.append((encoded + SOFT_BREAK, False))
        return out


@dataclass
class Message:
    """One recipient's message. The MIME bytes are assembled only when a backend asks for
    them (SMTP, outbox); SendGrid sends the per-recipient values instead."""

    subscriber_id: int
    to: str
    name: str
    tier: Tier
    values: dict[str, str]
    list_unsubscribe: str
    factory: MessageFactory = field(repr=False)
    _data: bytes | None = field(default=None, repr=False)
    _parts: list[Part] | None = field(default=None, repr=False)  # the body's pieces
    personal: bytes = field(default=b"", repr=False)  # To, Message-ID, List-Unsubscribe…

    @property
    def message_id(self) -> str:
        return self.factory.message_id(self.subscriber_id)

    @property
    def envelope_from(self) -> str:
        """The SMTP MAIL FROM: the recipient's VERP address when a bounce address is set."""
        return self.factory.envelope_from(self.subscriber_id)

    @property
    def data(self) -> bytes:
        """The whole message, CRLF line ends, ready for SMTP or a .eml file."""
        if self._data is None:
            self._data = self.factory.render(self)
        return self._data


@dataclass(frozen=True)
class IssueContent:
    """What the build wrote for one issue: the emails of each tier and their subject."""

    newsletter: str
    date: dt.date
    subject: str
    html: dict[Tier, str]
    text: dict[Tier, str]

    @property
    def key(self) -> str:
        return f"{self.newsletter}/{self.date.isoformat()}"


class MessageFactory:
    def __init__(
        self,
        config: Config,
        content: IssueContent,
        signer: Signer,
        secret: str,
        now: dt.datetime,
        test: bool = False,
        mime: bool = True,
    ):
        nl = config.newsletters[content.newsletter]
        # False for a backend that sends values, not bytes (SendGrid): each recipient's own
        # headers are then written only if something asks for the bytes
        self.mime = mime
        pub = config.publication
        self.content = content
        self.signer = signer
        self._message_ids = MessageIds(secret)
        self.base = pub.root_url
        sender_name, sender = parseaddr(nl.sender)
        self.domain = sender.rsplit("@", 1)[1].lower()
        self.mailto = pub.unsubscribe_mailto or f"unsubscribe@{self.domain}"
        subject = ("[TEST] " if test else "") + content.subject
        # what API backends (SendGrid) need besides the MIME bytes
        self.subject = clean(subject)
        self.sender = (clean(sender_name), sender)
        self.reply_to = tuple(clean(p) for p in parseaddr(nl.reply_to)) if nl.reply_to else None
        self.list_id = f"{clean(nl.title)} <{content.newsletter}.{self.domain}>"
        # VERP (#14): each message's bounces come back to an address naming its recipient
        self.bounce_address = config.smtp.bounce_address
        self.verp = VerpSigner(secret) if self.bounce_address else None
        self.boundary = "=_nl_" + hashlib.sha256(content.key.encode()).hexdigest()[:28]
        common = [
            header("From", Address(sender_name, sender)),
            *([header("Reply-To", Address.parse(nl.reply_to))] if nl.reply_to else []),
            header("Subject", Text(subject)),
            header("Date", format_datetime(now)),
            header("MIME-Version", "1.0"),
            header("List-Id", Text(nl.title), f"<{content.newsletter}.{self.domain}>"),
            header("X-Newsletter-Issue", content.key),
            header("Content-Type", f'multipart/alternative; boundary="{self.boundary}"'),
        ]
        self.common = b"".join(common)
        self.quoted_text = {t: QuotedTemplate(content.text[t], for_html=False) for t in Tier}
        self.quoted_html = {t: QuotedTemplate(content.html[t], for_html=True) for t in Tier}

    def message_id(self, subscriber_id: int) -> str:
        """Unique per recipient, the same every time for one (issue, subscriber)."""
        return self._message_ids.make(self.content.key, subscriber_id, self.domain)

    def envelope_from(self, subscriber_id: int) -> str:
        """bounces+<token>@… for a list recipient; the bare bounce address for a test send
        (negative ids name no subscriber); the From address without a bounce address."""
        if self.verp is None or self.bounce_address is None:
            return self.sender[1]
        if subscriber_id < 0:
            return self.bounce_address
        return self.verp.address(self.bounce_address, self.content.key, subscriber_id)

    def values(self, recipient: Recipient) -> dict[str, str]:
        unsubscribe = self.signer.make("unsubscribe", recipient.id, self.content.newsletter)
        preferences = self.signer.make("preferences", recipient.id)
        return {
            "email": recipient.email,
            "name": recipient.name,
            "unsubscribe_url": f"{self.base}/unsubscribe/{unsubscribe}",
            "preferences_url": f"{self.base}/preferences/{preferences}",
        }

    def build(self, recipient: Recipient) -> Message:
        tier = Tier.PREMIUM if recipient.tier == "premium" else Tier.FREE
        values = self.values(recipient)
        token = values["unsubscribe_url"].rsplit("/", 1)[1]
        mailto = f"mailto:{self.mailto}?subject=unsubscribe%20{token}"  # tokens are URL-safe
        message = Message(
            subscriber_id=recipient.id,
            to=clean(recipient.email),
            name=clean(recipient.name)[:NAME_MAX].rstrip(),
            tier=tier,
            values={**values, "name": values["name"][:NAME_MAX]},
            list_unsubscribe=f"<{values['unsubscribe_url']}>, <{mailto}>",
            factory=self,
        )
        if self.mime:  # here: a header that cannot be written fails now, as this recipient's
            message.personal = self.personal(message)
        return message

    def personal(self, message: Message) -> bytes:
        """The recipient's own headers; MessageError if one cannot be written."""
        return b"".join(
            [
                header("To", Address(message.name, message.to)),
                header("Message-ID", message.message_id),
                header("List-Unsubscribe", message.list_unsubscribe),
                header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
        )

    def headers(self, message: Message) -> bytes:
        """The message's header lines (without the blank line that ends them)."""
        return self.common + (message.personal or self.personal(message))

    def body(self, message: Message) -> list[Part]:
        """The body (after the blank line) as the pieces it is joined from, each whole
        lines: DKIM canonicalises the shared ones once per tier (send/dkim.py). Kept on the
        message: rendering it and signing it both need them."""
        if message._parts is None:
            text = self.quoted_text[message.tier].parts(message.values)
            page = self.quoted_html[message.tier].parts(message.values)
            message._parts = _alternative(self.boundary, text, page)
        return message._parts

    def render(self, message: Message) -> bytes:
        body = [piece for piece, _ in self.body(message)]
        return b"".join([self.headers(message), b"\r\n", *body])


_PART = (
    b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
)


def _alternative(boundary: str, text: list[Part], page: list[Part]) -> list[Part]:
    """The body: the text and the HTML part, both already quoted-printable (so the
    boundary, which starts with `=_`, can occur in neither)."""
    mark = boundary.encode()
    return [
        (b"This is a multipart message in MIME format.\r\n--" + mark + b"\r\n", True),
        (_PART % b"plain", True),
        *text,
        (b"\r\n--" + mark + b"\r\n" + _PART % b"html", True),
        *page,
        (b"\r\n--" + mark + b"--\r\n", True),
    ]


def notice_data(notice: Notice) -> bytes:
    """A notice's whole message, CRLF line ends, built like an issue's (same headers writer,
    same multipart body); Auto-Submitted keeps vacation replies away from a confirmation."""
    boundary = "=_nl_" + hashlib.sha256(notice.message_id.encode()).hexdigest()[:28]
    headers = [
        header("From", Address(notice.sender_name, notice.sender)),
        header("To", Address("", notice.to)),
        *([header("Reply-To", Address.parse(notice.reply_to))] if notice.reply_to else []),
        header("Subject", Text(notice.subject)),
        header("Date", format_datetime(notice.date)),
        header("Message-ID", notice.message_id),
        header("Auto-Submitted", "auto-generated"),
        header("MIME-Version", "1.0"),
        header("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    body = _alternative(boundary, [(_qp(notice.text), True)], [(_qp(notice.html), True)])
    return b"".join([*headers, b"\r\n", *(piece for piece, _ in body)])
