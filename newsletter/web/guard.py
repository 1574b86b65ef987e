"""The database file under a running service. SQLite keeps writing into a file that was
deleted (its open connections hold the inode), so without this check the service would
acknowledge webhook events and sign-ups that no database will ever hold. Each request
compares the file's device and inode with those at start (one os.stat), before the
endpoint runs and again before a success is sent; on a mismatch the answer is a 503 (SendGrid
retries; the events are stored once), logged, until the service is restarted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.errors import DatabaseGone

log = logging.getLogger("newsletter.web")


def identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class DatabaseGuard:
    """503 for every request once `path` is not the file the service opened."""

    def __init__(self, app: ASGIApp, path: Path, opened: tuple[int, int] | None):
        self.app = app
        self.path = path
        self.opened = opened

    def _gone(self) -> DatabaseGone | None:
        now = identity(self.path)
        if now is not None and now == self.opened:
            return None
        what = "is gone" if now is None else "was replaced"
        return DatabaseGone(
            f"the database file {self.path} {what} since the service started: "
            "answering 503 until the service is restarted on it"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gone = self._gone()
        if gone is not None:
            await self._refuse(gone, scope, receive, send)
            return
        refused = False

        async def checked(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the endpoint's own answer, replaced by the 503
            if message["type"] == "http.response.start" and message["status"] < 400:
                late = self._gone()  # the file went while the endpoint wrote to it
                if late is not None:
                    refused = True
                    await self._refuse(late, scope, receive, send)
                    return
            await send(message)

        await self.app(scope, receive, checked)

    async def _refuse(self, exc: DatabaseGone, scope: Scope, receive: Receive, send: Send) -> None:
        from newsletter.web.pages import error

        request = Request(scope, receive)
        log.error("%s %s: %s", request.method, request.url.path, exc)
        message = "Something went wrong on our side: please try again shortly."
        if request.url.path.startswith("/api/"):  # the API answers in JSON, always
            from newsletter.web.api.auth import error as api_error

            await api_error(503, "unavailable", message)(scope, receive, send)
            return
        await error(request, message, 503)(scope, receive, send)
