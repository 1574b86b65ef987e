"""Security headers on every response (a plain ASGI middleware: Starlette's
BaseHTTPMiddleware costs a task and a stream per request)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
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
