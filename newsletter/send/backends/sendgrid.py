"""SendGrid's v3 Mail Send API.

One request carries up to 1,000 personalizations that share one HTML and one text body;
each recipient's values travel as `substitutions` (HTML-escaped copies for the HTML part,
under their own tags), `custom_args` carry opaque ids of the issue and subscriber for the
event webhook (never the address: SendGrid keeps them), and a category names the newsletter.

The request is posted with urllib, as the official library's HTTP client
(python_http_client) posts it, with its headers (but our own User-Agent) and the same
errors, the body encoded once by orjson: the library encoded each 1.25 MB body with the
standard encoder and then formatted the whole of it into a debug log line that never
prints, a third of the send's CPU (#16). The `sendgrid` package still owns the event webhook's
signature check (`sendgrid_webhook`).

- the API key only from SENDGRID_API_KEY; masked in every error by the one rule
  (`config.Environment.mask`, applied by the sender and the CLI); nothing here logs a
  header or a body;
- an explicit timeout on every request;
- 429: wait until X-RateLimit-Reset; 5xx: retried with backoff and jitter, bounded;
- a timeout or a dropped connection after the request went out: the outcome is unknown;
  no connection at all (refused, DNS, TLS handshake): nothing went out, so after the
  retries it is failed, and later batches of the send try once each;
- 400/401/403/413: BackendRefused, and the send stops with the API's own error text.
"""

from __future__ import annotations

import html
import json
import threading
import time
import urllib.error
import urllib.request
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from newsletter.config import SENDGRID_API_KEY_ENV, Environment, SendGridSettings
from newsletter.errors import BackendRefused, NewsletterError
from newsletter.placeholders import NAMES
from newsletter.send.backends.base import Outcome
from newsletter.send.message import Message, MessageFactory
from newsletter.send.retry import delays

if TYPE_CHECKING:
    from newsletter.audience.notices import Notice

SUBSTITUTIONS_LIMIT = 10_000  # bytes per personalization (SendGrid's documented limit)
STOP_STATUSES = (400, 401, 403, 413)


def _tag(name: str, part: str) -> str:
    return f"%%{name}.{part}%%"


class SendGridBackend:
    name = "sendgrid"
    mime = False  # the values travel as substitutions; SendGrid writes the MIME

    def __init__(self, settings: SendGridSettings, send_at: int | None = None):
        secret = Environment().sendgrid_api_key()
        key = secret.get_secret_value() if secret else ""
        if not key:
            raise NewsletterError(
                f"the sendgrid backend needs the API key in {SENDGRID_API_KEY_ENV}"
            )
        self.key = key
        self.settings = settings
        self.host = Environment().sendgrid_api_host() or settings.host
        self.batch_size = settings.batch_size
        self.parallel = settings.parallel
        self.send_at = send_at
        self.factory: MessageFactory | None = None
        self._local = threading.local()
        self._unreachable = False  # the last request could not reach the API at all
        from newsletter import __version__

        self.url = f"{self.host.rstrip('/')}/v3/mail/send"
        self.headers = {  # what the library sends, but for the User-Agent: ours
            "Authorization": f"Bearer {key}",
            "User-Agent": f"newsletter/{__version__}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def use(self, factory: MessageFactory) -> None:
        self.factory = factory

    def _opener(self) -> urllib.request.OpenerDirector:
        opener = getattr(self._local, "opener", None)
        if opener is None:  # one a thread, as the library builds one a request
            opener = self._local.opener = urllib.request.build_opener()
        return opener

    def _request(self, data: bytes) -> str:
        """POST one body; the X-Message-Id of the answer. urllib's errors as they come."""
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        with self._opener().open(request, timeout=self.settings.timeout) as response:
            response.read()
            return str(response.headers.get("X-Message-Id", "") or "")

    # -- the request -----------------------------------------------------------------------

    def payload(self, messages: list[Message]) -> dict[str, Any]:
        factory = self.factory
        assert factory is not None, "use(factory) first"
        tier = messages[0].tier
        content = factory.content
        text = content.text[tier]
        page = content.html[tier]
        for name in NAMES:  # each part gets its own tags: escaped values for HTML only
            text = text.replace(f"%%{name}%%", _tag(name, "text"))
            page = page.replace(f"%%{name}%%", _tag(name, "html"))
        personalizations = []
        tags = [(name, _tag(name, "text"), _tag(name, "html")) for name in NAMES]
        for m in messages:
            values = m.values
            substitutions = {}
            for name, text_tag, html_tag in tags:
                value = substitutions[text_tag] = values[name]
                substitutions[html_tag] = _escaped(value)
            if len(m.name) > 300:  # values are otherwise far below the limit
                size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
                if size > SUBSTITUTIONS_LIMIT:
                    raise ValueError(
                        f"substitutions of {m.to} are {size} bytes, over SendGrid's limit"
                    )
            to = {"email": m.to, **({"name": m.name} if m.name else {})}
            personalizations.append(
                {
                    "to": [to],
                    "substitutions": substitutions,
                    "custom_args": {"nl_issue": content.key, "nl_subscriber": str(m.subscriber_id)},
                    "headers": {"List-Unsubscribe": m.list_unsubscribe},
                }
            )
        sender_name, sender = factory.sender
        body: dict[str, Any] = {
            "from": {"email": sender, **({"name": sender_name} if sender_name else {})},
            "subject": factory.subject,
            "content": [
                {"type": "text/plain", "value": text},
                {"type": "text/html", "value": page},
            ],
            "personalizations": personalizations,
            "headers": {
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": factory.list_id,
                "X-Newsletter-Issue": content.key,
            },
            "categories": [f"newsletter:{content.newsletter}"],
            "custom_args": {"nl_issue": content.key},
        }
        if factory.reply_to:
            name, address = factory.reply_to
            body["reply_to"] = {"email": address, **({"name": name} if name else {})}
        if self.send_at is not None:
            body["send_at"] = self.send_at
        return body

    def send(self, messages: list[Message]) -> list[Outcome]:
        """One request per tier (the bodies differ); a request's messages share its outcome."""
        results: dict[int, Outcome] = {}
        for tier in sorted({m.tier for m in messages}):
            group = [m for m in messages if m.tier == tier]
            outcome = self._post(self.payload(group))
            results.update((m.subscriber_id, outcome) for m in group)
        return [results[m.subscriber_id] for m in messages]

    def send_notice(self, notice: Notice) -> Outcome:
        """A single transactional email; its category keeps its events out of issue counts."""
        body: dict[str, Any] = {
            "from": {"email": notice.sender, "name": notice.sender_name},
            "subject": notice.subject,
            "content": [
                {"type": "text/plain", "value": notice.text},
                {"type": "text/html", "value": notice.html},
            ],
            "personalizations": [{"to": [{"email": notice.to}]}],
            "categories": [f"notice:{notice.kind}"],
            "custom_args": {"nl_notice": notice.kind},
            "tracking_settings": {
                "click_tracking": {"enable": False},  # the signed link must arrive as it is
                "open_tracking": {"enable": False},
            },
        }
        if notice.reply_to:
            name, address = parseaddr(notice.reply_to)
            body["reply_to"] = {"email": address, **({"name": name} if name else {})}
        try:
            return self._post(body)
        except BackendRefused as exc:
            return Outcome("failed", error=str(exc))

    def _post(self, body: dict[str, Any]) -> Outcome:
        import orjson

        data = orjson.dumps(body)
        waits = delays(self.settings.retry_delay, self.settings.retries)
        attempt = 0
        while True:
            try:
                message_id = self._request(data)
            except urllib.error.HTTPError as exc:  # an answer, not a failure to connect
                status = exc.code
                text = _error_text(exc)
                if status in STOP_STATUSES:
                    raise BackendRefused(
                        f"SendGrid refused the request ({status}): {text}"
                    ) from None
                if attempt >= len(waits):
                    return Outcome(
                        "failed", error=f"SendGrid answered {status} {attempt + 1} times: {text}"
                    )
                if status == 429:
                    time.sleep(_until_reset(exc, waits[attempt]))
                elif 500 <= status < 600:
                    time.sleep(waits[attempt])
                else:
                    return Outcome("failed", error=f"SendGrid answered {status}: {text}")
                attempt += 1
                continue
            except TimeoutError as exc:
                return Outcome(
                    "unknown",
                    error=f"no answer from SendGrid within {self.settings.timeout:g} s: {exc}",
                )
            except urllib.error.URLError as exc:
                # urllib wraps only what fails before the request is written whole (DNS, a
                # refused connection, the TLS handshake, a stalled write): SendGrid cannot
                # have acted on it, so it is retried, then failed (--retry-failed), never unknown
                if attempt < len(waits) and not self._unreachable:
                    time.sleep(waits[attempt])
                    attempt += 1
                    continue
                self._unreachable = True  # the next batches try once each, not every retry
                return Outcome(
                    "failed",
                    error=f"cannot reach SendGrid at {self.host} (nothing sent): {exc.reason}",
                )
            except (ConnectionError, OSError) as exc:  # dropped after the request went out
                return Outcome("unknown", error=f"connection to SendGrid lost: {exc}")
            self._unreachable = False
            return Outcome("sent", provider_id=message_id)

    def settle(self, subscriber_ids: list[int]) -> None:
        return None

    def close(self) -> None:
        pass


def _escaped(value: str) -> str:
    """html.escape(value, quote=True), without its five replaces for the many values (the
    links) that hold none of the five characters."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return html.escape(value, quote=True)
    return value


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The API's own error messages, from the JSON body of a refusal."""
    try:
        body = exc.read(64 * 1024)
    except OSError:
        body = b""
    text = body.decode("utf-8", "replace")
    try:
        errors = json.loads(text).get("errors", [])
        messages = [
            e.get("message", "") + (f" ({e['field']})" if e.get("field") else "") for e in errors
        ]
        if messages:
            return "; ".join(messages)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:500] or str(exc.reason)


def _until_reset(exc: urllib.error.HTTPError, fallback: float) -> float:
    headers = getattr(exc, "headers", None)
    reset = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        return max(0.0, min(float(reset) - time.time(), 60.0)) if reset else fallback
    except ValueError:
        return fallback
