"""What keeps the service safe, in one place: security headers on every response, the
forms' CSRF protection, and the per-client sign-up limit. (No endpoint redirects, so there
is no open redirect to guard.)

CSRF without cookies: each form carries a signed, timestamped token bound to what the form
acts on (the subscriber's link token, or the form's name), and a POST whose Origin (or, for
older browsers, Sec-Fetch-Site) says it came from another site is refused. The one-click
unsubscribe POST is exempt by design (RFC 8058: mailbox providers send it with neither)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_MAX_AGE = 24 * 3600  # a page left open all day can still be submitted

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # a link's token never leaves for another site; our own form posts still carry a real
    # Origin (with no-referrer, Chromium sends "Origin: null" and the origin check is blind)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a task and a stream
    per request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # a page that sets its own policy (the embeddable sign-up form) keeps it
                own = "content-security-policy" in headers
                for name, value in HEADERS.items():
                    if own and name in ("Content-Security-Policy", "X-Frame-Options"):
                        continue
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def policy(frame_ancestors: list[str]) -> str:
    """The Content-Security-Policy above, with the given origins allowed to frame the page."""
    allowed = " ".join(frame_ancestors) or "'none'"
    return HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", f"frame-ancestors {allowed}"
    )


class FormTokens:
    """The forms' CSRF tokens: signed with a key of their own (derived from the secret that
    signs the links), timestamped, bound to what the form acts on (a subscriber's link
    token, or the form's name). No cookie is needed."""

    def __init__(self, secret: str, clock: Callable[[], float]):
        from newsletter.audience.tokens import Stamp

        self._stamp = Stamp(secret, "newsletter.form", clock)

    def make(self, binding: str) -> str:
        return self._stamp.sign(_form_value(binding))

    def check(self, token: str, binding: str, max_age: int) -> bool:
        value = self._stamp.unsign(token, max_age)
        return value is not None and hmac.compare_digest(value, _form_value(binding).encode())


def _form_value(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()[:32]


def csrf_token(request: Request, binding: str) -> str:
    forms: FormTokens = request.app.state.forms
    return forms.make(binding)


def _same_site(request: Request) -> bool:
    sent = request.headers.get("origin")
    if sent and sent != "null":
        allowed = {
            origin(str(request.base_url)),
            origin(request.app.state.config.publication.root_url),
        }
        return origin(sent) in allowed
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site in (None, "same-origin", "same-site", "none")


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased: what browsers send in Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def checked_form(request: Request, binding: str) -> dict[str, list[str]] | None:
    """The POSTed form's fields, or None if its CSRF token or origin is wrong."""
    if not _same_site(request):
        return None
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str):
        return None
    forms: FormTokens = request.app.state.forms
    if not forms.check(token, binding, FORM_MAX_AGE):
        return None
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


class ClientLimiter:
    """At most `limit` sign-ups per client address an hour, in this process's memory (the
    per-address limit is in the database, so it holds across processes)."""

    def __init__(self, limit: int, window: float = 3600.0):
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def allow(self, client: str, now: float) -> bool:
        with self._lock:
            if now >= self._next_sweep:  # forget quiet clients, once a window, not per call
                self._seen = defaultdict(
                    deque, {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
                )
                self._next_sweep = now + self.window
            times = self._seen[client]
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True
