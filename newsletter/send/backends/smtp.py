"""SMTP: pooled connections (one per worker thread), reused for many messages.

- 4xx replies (and a dropped connection before the message was accepted) are retried with
  backoff; 5xx replies fail that recipient with the server's own text.
- After an error inside a transaction the connection is reset (RSET) or, if that fails,
  dropped; it is never reused as it was.
- A timeout or a dropped connection after the final dot means the server may have the
  message: the outcome is unknown, not failed, and it is not retried.
- A refusal of the recipient (5xx to RCPT TO or after DATA, or 4xx until the retries ran
  out) carries a `Refusal`: the sender records it as a bounce (#14). A refused MAIL FROM is
  about us, not the recipient, and carries none.
- With `bounce_address`, the envelope sender is the message's VERP address.
The password comes only from NEWSLETTER_SMTP_PASSWORD.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from typing import TYPE_CHECKING

from newsletter.config import Environment, SmtpSettings
from newsletter.send.backends.base import Outcome, Refusal
from newsletter.send.dkim import DkimSigner, signed, signed_data
from newsletter.send.message import Message, MessageFactory, notice_data
from newsletter.send.retry import delays

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from newsletter.audience.notices import Notice


def _reply_text(code: int, text: bytes | str) -> str:
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(body.split())}"


class _SMTP(smtplib.SMTP):
    """Knows whether the final dot of a message went out: after it, the server may have
    accepted the message whatever happens to the reply."""

    dot_sent = False

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.dot_sent = True


class _SMTPSSL(_SMTP, smtplib.SMTP_SSL):
    """The same over implicit TLS."""


class SmtpBackend:
    mime = True
    name = "smtp"
    batch_size = 1

    def __init__(self, settings: SmtpSettings, dkim: DkimSigner | None = None):
        self.settings = settings
        self.dkim = dkim
        self.parallel = settings.connections
        secret = Environment().smtp_password()
        self.password = secret.get_secret_value() if secret else None
        self._local = threading.local()
        self._connections: list[_SMTP] = []
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._ssl: ssl.SSLContext | None = None

    # -- connections -------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        """One TLS context for all connections: making one costs ~40 ms (it loads the CAs)."""
        with self._lock:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            return self._ssl

    def _connect(self) -> _SMTP:
        s = self.settings
        context = self._context() if s.security != "none" else None
        if s.security == "tls":
            conn: _SMTP = _SMTPSSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            conn = _SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                conn.starttls(context=context)
        if s.username:
            conn.login(s.username, self.password or "")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> _SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _reset(self) -> None:
        """After an error mid-transaction: RSET, or drop the connection if that fails."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        try:
            code, _ = conn.rset()
            if code != 250:
                self._drop()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _throttle(self) -> None:
        if not self.settings.rate:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1 / self.settings.rate
        if slot > now:
            time.sleep(slot - now)

    # -- sending -------------------------------------------------------------------------------

    def use(self, factory: MessageFactory) -> None:
        pass  # each message carries its whole MIME bytes

    def send(self, messages: list[Message]) -> list[Outcome]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: Message) -> Outcome:
        # the envelope sender comes from the factory (VERP or From): no parsing of each message
        data = signed(self.dkim, message)
        return self.deliver(message.envelope_from, message.to, data, message.message_id)

    def send_notice(self, notice: Notice) -> Outcome:
        envelope_from = self.settings.bounce_address or notice.sender
        data = signed_data(self.dkim, notice_data(notice))
        return self.deliver(envelope_from, notice.to, data, notice.message_id)

    def deliver(self, envelope_from: str, to: str, data: bytes, message_id: str) -> Outcome:
        """One message, with the retry rules above."""
        waits = delays(self.settings.retry_delay, self.settings.retries)
        last = ""
        deferred: Refusal | None = None  # the last 4xx refusal of the recipient
        for attempt in range(len(waits) + 1):
            if attempt:
                time.sleep(waits[attempt - 1])
            self._throttle()
            try:
                conn = self._connection()
            except (smtplib.SMTPException, OSError) as exc:
                deferred = None
                last = f"cannot connect to {self.settings.host}:{self.settings.port}: {exc}"
                self._drop()
                continue
            conn.dot_sent = False
            try:
                refused = conn.sendmail(envelope_from, [to], data)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients.get(to, (550, b"refused"))
                self._reset()
                last = _reply_text(code, text)
                if 400 <= code < 500:
                    deferred = Refusal(code, last, permanent=False)
                    continue
                return Outcome("failed", error=last, refusal=Refusal(code, last, permanent=True))
            except (
                smtplib.SMTPResponseException
            ) as exc:  # MAIL FROM, DATA refused, or after the dot
                self._reset()
                last = _reply_text(exc.smtp_code, exc.smtp_error)
                # a refused MAIL FROM or HELO is about us or the server: not the recipient's bounce
                ours = isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPHeloError)
                if 400 <= exc.smtp_code < 500:
                    deferred = None if ours else Refusal(exc.smtp_code, last, permanent=False)
                    continue
                refusal = None if ours else Refusal(exc.smtp_code, last, permanent=True)
                return Outcome("failed", error=last, refusal=refusal)
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError) as exc:
                deferred = None
                self._drop()
                if conn.dot_sent:
                    return Outcome(
                        "unknown", error=f"connection lost after the message was sent: {exc}"
                    )
                last = f"connection lost: {exc}"
                continue
            if refused:
                code, text = refused[to]
                reply = _reply_text(code, text)
                return Outcome("failed", error=reply, refusal=Refusal(code, reply, code >= 500))
            return Outcome("sent", provider_id=message_id)
        error = f"gave up after {len(waits) + 1} attempts: {last}"
        return Outcome("failed", error=error, refusal=deferred)

    def settle(self, subscriber_ids: list[int]) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                try:
                    conn.close()
                except OSError:
                    pass
