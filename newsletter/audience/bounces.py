"""What a message in the bounce mailbox says: a bounce, a complaint, an auto-reply, or
nothing we can read. Typed results; applying them to the lists is `audience.delivery`'s.

In this order, first match wins:
1. RFC 5965 feedback reports (ARF, `multipart/report; report-type=feedback-report`) from the
   mailbox providers' feedback loops: `abuse` (and `fraud`) is a complaint; other feedback
   types (`not-spam`, `auth-failure`…) are reports that change nothing.
2. RFC 3464 delivery status notifications (`report-type=delivery-status`): per recipient, its
   action, RFC 3463 status code and diagnostic.
3. flufl.bounce (the Mailman project's detectors for older Exim, qmail, Microsoft, Yahoo and
   many vendor formats): the failed addresses, permanent or temporary.
4. Auto-replies (RFC 3834 `Auto-Submitted`, and the vendors' own marks): not bounces. Checked
   after the reports because MTAs mark their bounces `Auto-Submitted: auto-replied` too.
5. Anything else is unknown: counted and listed by the caller, never acted on.

Whatever the report's format, the VERP token of the address it came back to (Delivered-To,
X-Original-To… or the original message's Return-Path) names the issue and the subscriber,
even when the report names no address or a garbled one.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Literal

from newsletter.audience.tokens import BounceToken, MessageIds, VerpSigner

Severity = Literal["hard", "soft", "blocked", "delayed"]
Kind = Literal["bounce", "complaint", "report", "autoreply", "unknown"]

_ISSUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}/\d{4}-\d{2}-\d{2}$")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# undefined (older MTAs' "user unknown"), other mailbox status, mailbox disabled, no route
HARD_STATUSES = {"5.0.0", "5.2.0", "5.2.1", "5.4.4"}
SENDER_STATUSES = {"5.1.7", "5.1.8"}  # our envelope sender's fault, not the recipient's
HARD_BASIC = {550, 551, 553}  # without an enhanced code: mailbox unavailable, not local, bad name
COMPLAINTS = {"abuse", "fraud"}


def status_of(text: str) -> str:
    """The first RFC 3463 status code (`5.1.1`) in a reply or a diagnostic; "" if none."""
    m = _STATUS.search(text)
    return ".".join(m.groups()) if m else ""


def severity(status: str, code: int | None = None) -> Severity:
    """What a failure means for the address, by RFC 3463: `hard` (5.1.x bad address or
    mailbox, 5.2.0/5.2.1 mailbox unavailable or disabled, 5.4.4 unroutable, and the undefined
    5.0.0 that older MTAs give an unknown user: suppress), `soft` (any 4.x.x, and 5.2.2
    mailbox full, which RFC 3463 calls persistent transient: counted against the soft-bounce
    threshold), `blocked` (other permanent failures: policy, content, protocol; they are about
    the message or the sender, so the address stays). Without an enhanced status, the basic
    reply code decides (550, 551, 553 hard; 4xx and 552 soft)."""
    if status:
        klass, subject, _ = status.split(".")
        if klass == "4" or status == "5.2.2":
            return "soft"
        if klass == "5" and status not in SENDER_STATUSES:
            if subject == "1" or status in HARD_STATUSES:
                return "hard"
        return "blocked" if klass == "5" else "soft"
    if code is None:
        return "blocked"
    if 400 <= code < 500 or code == 552:
        return "soft"
    return "hard" if code in HARD_BASIC else "blocked"


@dataclass(frozen=True)
class Failure:
    """One recipient a report says was not delivered ("" when only the VERP token names them)."""

    email: str
    severity: Severity
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Classified:
    kind: Kind
    message_id: str  # the report's own Message-ID, or a digest of its bytes when it has none
    how: str  # dsn | flufl | arf | auto-submitted | … : which rule matched
    failures: tuple[Failure, ...] = ()
    complainant: str = ""  # a complaint's address ("" when the provider redacted it)
    feedback_type: str = ""
    token: BounceToken | None = None
    # the issue the original message's X-Newsletter-Issue names, when the report carries its
    # headers: not signed, so it only files a bounce under an issue, never picks a subscriber
    issue: str | None = None
    subject: str = ""
    sender: str = ""
    occurred_at: dt.datetime | None = None


class Classifier:
    """Classify one raw message. With a bounce address and the secret's VerpSigner, VERP
    tokens are read (and verified: a forged one is ignored)."""

    def __init__(
        self,
        verp: VerpSigner | None = None,
        bounce_address: str | None = None,
        message_ids: MessageIds | None = None,
    ):
        self.verp = verp
        self.bounce_address = bounce_address
        self.message_ids = message_ids

    def classify(self, data: bytes) -> Classified:
        msg = email.message_from_bytes(data)
        token = self._token(msg)
        named = _one_line(_original_header(msg, "X-Newsletter-Issue"))
        issue = token.issue if token else (named if _ISSUE.match(named) else None)

        def result(kind: Kind, how: str, **found: Any) -> Classified:
            return replace(
                Classified(
                    kind,
                    message_key(msg, data),
                    how,
                    token=token,
                    issue=issue,
                    subject=_one_line(msg.get("Subject", "")),
                    sender=_one_line(msg.get("From", "")),
                    occurred_at=_date(msg),
                ),
                **found,
            )

        report = msg.get_param("report-type", "", header="content-type")
        report_type = report.lower() if isinstance(report, str) else ""
        if msg.get_content_type() == "multipart/report" and report_type == "feedback-report":
            fields = _first_part(msg, "message/feedback-report")
            if fields is not None:
                feedback = _one_line(fields.get("Feedback-Type", "")).lower()
                complainant = _address(str(fields.get("Original-Rcpt-To", ""))) or _address(
                    _original_header(msg, "To")
                )
                kind: Kind = "complaint" if feedback in COMPLAINTS else "report"
                return result(kind, "arf", complainant=complainant, feedback_type=feedback)
        if msg.get_content_type() == "multipart/report" and report_type != "feedback-report":
            # some MTAs omit report-type: the message/delivery-status part is what counts
            failures = _dsn_failures(msg)
            if failures:
                return result("bounce", "dsn", failures=failures)
        failures = _flufl_failures(msg)
        if failures:
            return result("bounce", "flufl", failures=failures)
        auto = _auto_reply(msg)
        if auto:
            return result("autoreply", auto)
        if token is not None and _looks_like_bounce(msg):
            # a report we cannot read, to a VERP address, from a mailer daemon: a bounce of
            # that recipient, though we cannot tell how it failed; counted as soft
            return result("bounce", "verp", failures=(Failure("", "soft"),))
        return result("unknown", "")

    def _token(self, msg: Message) -> BounceToken | None:
        """The recipient a signed token names: the VERP address the report came back to,
        else the Message-ID of ours that the report quotes (a feedback loop that redacts
        the recipient keeps it; so does a bounce to a return path without VERP)."""
        token = self._verp_token(msg)
        if token is None and self.message_ids is not None:
            token = self.message_ids.read(_one_line(_original_header(msg, "Message-ID")))
        return token

    def _verp_token(self, msg: Message) -> BounceToken | None:
        if self.verp is None or not self.bounce_address:
            return None
        candidates = [
            address
            for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
            for _, address in getaddresses([str(v) for v in msg.get_all(name, [])])
        ]
        candidates.append(_address(_original_header(msg, "Return-Path")))
        return self.verp.find(self.bounce_address, [c for c in candidates if c])


def message_key(msg: Message, data: bytes) -> str:
    """What makes processing idempotent: the Message-ID, else a digest of the bytes."""
    value = _one_line(msg.get("Message-ID", ""))
    if value:
        return value[:255]
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _address(value: str) -> str:
    pairs = getaddresses([value.split(";", 1)[-1]]) if value else []
    found = pairs[0][1].strip().strip("<>") if pairs else ""
    return found if "@" in found else ""


def _date(msg: Message) -> dt.datetime | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _parts(msg: Message) -> Iterator[Message]:
    yield msg
    payload = msg.get_payload()
    if isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _parts(part)


def _first_part(msg: Message, content_type: str) -> Message | None:
    """The fields of a report part (`message/feedback-report`), parsed as headers."""
    for part in _parts(msg):
        if part.get_content_type() != content_type:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):
            return email.message_from_string(payload.lstrip())
    return None


def _original_header(msg: Message, name: str) -> str:
    """A header of the original message a report carries (message/rfc822, or the
    text/rfc822-headers of a DSN)."""
    for part in _parts(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                value = payload[0].get(name)
                if value:
                    return str(value)
        elif kind in ("text/rfc822-headers", "text/rfc822-header"):
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            value = email.message_from_string(text.lstrip()).get(name)
            if value:
                return str(value)
    return ""


def _dsn_failures(msg: Message) -> tuple[Failure, ...]:
    failures: list[Failure] = []
    for part in _parts(msg):
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is about the message, the rest per recipient
            if not isinstance(block, Message):
                continue
            action = _one_line(block.get("Action", "")).lower()
            if action not in ("failed", "delayed"):
                continue  # delivered, relayed, expanded
            # the original recipient is the address we sent to; the final one may be an
            # internal alias (userx@sims-ms-daemon)
            recipient = _address(str(block.get("Original-Recipient", ""))) or _address(
                str(block.get("Final-Recipient", ""))
            )
            diagnostic = _one_line(block.get("Diagnostic-Code", ""))
            status = status_of(_one_line(block.get("Status", ""))) or status_of(diagnostic)
            if action == "delayed":
                kind: Severity = "delayed"
            else:
                kind = severity(status, _basic_code(diagnostic))
            failures.append(Failure(recipient, kind, status, diagnostic[:500]))
    return tuple(failures)


def _basic_code(diagnostic: str) -> int | None:
    m = re.search(r"\b([245]\d\d)\b", diagnostic)
    return int(m.group(1)) if m else None


def _flufl_failures(msg: Message) -> tuple[Failure, ...]:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping on a malformed message: not a bounce we can read
        return ()
    failures = [Failure(_text(a), "hard") for a in sorted(permanent)]
    failures += [Failure(_text(a), "soft") for a in sorted(temporary - permanent)]
    return tuple(f for f in failures if "@" in f.email)


def _text(address: bytes | str) -> str:
    return address.decode("utf-8", "replace") if isinstance(address, bytes) else address


_AUTO_SUBJECT = re.compile(
    r"^(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|"
    r"autoreply|vacation|abwesenheit|absence)\b",
    re.IGNORECASE,
)


def _auto_reply(msg: Message) -> str:
    """Which mark says this is an auto-reply ("" if none)."""
    submitted = _one_line(msg.get("Auto-Submitted", "")).lower()
    if submitted and submitted != "no":
        return "auto-submitted"
    for name in ("X-Autoreply", "X-Autorespond"):
        if msg.get(name):
            return name.lower()
    if _one_line(msg.get("Precedence", "")).lower() == "auto_reply":
        return "precedence"
    if _AUTO_SUBJECT.match(_one_line(msg.get("Subject", ""))):
        return "subject"
    return ""


def _looks_like_bounce(msg: Message) -> bool:
    sender = _one_line(msg.get("From", "")).lower()
    return msg.get_content_type() == "multipart/report" or any(
        word in sender for word in ("mailer-daemon", "postmaster", "mail delivery")
    )
