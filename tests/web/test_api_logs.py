"""No API key ever reaches a log line: a real uvicorn with its access log on, requests with
the key in the Authorization header (good, unknown, revoked), a key pasted into a URL, and
a failing request whose error is logged; every line every logger wrote is searched."""

from __future__ import annotations

import datetime as dt
import http.client
import logging
from pathlib import Path

import pytest

from newsletter.audience import apikeys
from newsletter.audience.subscribers import add
from tests.conftest import WEB_SECRET, free_port


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_key_never_appears_in_the_logs(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import uvicorn

    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    add(store, "jane.doe@example.com", "daily")
    now = dt.datetime.now(dt.UTC)
    _, key = apikeys.create(store, "crm", ["subscribers:read"], now=now)
    _, gone = apikeys.create(store, "old", ["subscribers:read"], now=now)
    apikeys.revoke(store, "old", now=now)
    app = create_app(Workspace(workspace), store)

    handler = Lines()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "newsletter.web")]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        for logger in loggers:
            logger.addHandler(handler)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def call(path: str, presented: str) -> int:
            conn.request("GET", path, headers={"Authorization": f"Bearer {presented}"})
            response = conn.getresponse()
            response.read()
            return response.status

        assert call("/api/v1/subscribers/1", key) == 200
        assert call("/api/v1/subscribers/1", gone) == 401
        assert call("/api/v1/subscribers/1", key + "x") == 401
        assert call(f"/api/v1/subscribers?email={key}", key) == 422  # pasted into a URL
        assert call(f"/api/v1/subscribers/{key}", key) == 404
        logging.getLogger("newsletter.web").error("request headers: Authorization: Bearer %s", key)
        conn.close()
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        server.should_exit = True
        thread.join(10)
        store.close()
    text = "\n".join(handler.lines)
    assert "/api/v1/subscribers/1" in text  # the access log was captured
    assert text.count("nlk_[redacted]") >= 2
    for secret in (key, gone, key[4:], gone[4:]):
        assert secret not in text
