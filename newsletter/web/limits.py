"""What bounds a client's hold on the service: the size and the time of a request body, the
time to send the headers, and the key the per-client sign-up limit counts by.

The body limit wraps ASGI `receive`, so it holds for every endpoint and every transfer
encoding (a chunked body has no Content-Length to check): reading stops at the limit with
a 413, and a body that does not arrive in time is a 408. uvicorn's parsers (h11,
httptools) have no timeout for the headers either: `HeaderTimeoutProtocol` closes a
connection whose request headers are not complete in time."""

from __future__ import annotations

import ipaddress
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from newsletter.errors import BodyTimeout, BodyTooLarge

FORM_MAX_BODY = 64 * 1024  # a form is a few fields: this is generous
API_MAX_BODY = 1024 * 1024  # the API's JSON bodies
BODY_TIMEOUT = 30.0  # seconds for a whole request body, from the app's first read
HEADER_TIMEOUT = 10.0  # seconds for a request's headers, from the connection (or last answer)
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open


class BodyLimit:
    """Reads at most `limits.get(path, default)` bytes of a request body, within `timeout`
    seconds; BodyTooLarge or BodyTimeout (413, 408) otherwise, raised where the endpoint
    reads, so its exception handler answers."""

    def __init__(
        self,
        app: ASGIApp,
        default: int,
        limits: dict[str, int],
        timeout: float = BODY_TIMEOUT,
        prefixes: dict[str, int] | None = None,
    ):
        self.app = app
        self.default = default
        self.limits = limits
        self.timeout = timeout
        self.prefixes = prefixes or {}  # path prefix → limit (the API's, under /api/)

    def limit_of(self, path: str) -> int:
        if path in self.limits:
            return self.limits[path]
        for prefix, limit in self.prefixes.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        received = 0
        complete = False
        deadline: float | None = None

        async def bounded() -> Message:
            nonlocal received, complete, deadline
            if complete:  # after the body: only http.disconnect, never timed
                return await receive()
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise BodyTooLarge(f"the request body is over {limit} bytes")
            if deadline is None:
                deadline = anyio.current_time() + self.timeout
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(f"the request body took over {self.timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"the request body is over {limit} bytes")
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)


def client_key(host: str) -> str:
    """What the sign-up limit counts by: an IPv4 address; an IPv6 client's /64 (one
    subscriber line gets a /64, so each of its addresses is not another client); an
    IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers are not all
    in `HEADER_TIMEOUT` seconds after it opened or after the previous answer (a slowloris
    client otherwise holds a connection forever, a byte at a time)."""

    header_timeout = HEADER_TIMEOUT
    _header_timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        idle = not self.pipeline  # else the next request's headers are already in
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()
