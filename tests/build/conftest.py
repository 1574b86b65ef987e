"""Fixtures of the build tests: the sample feeds served over real HTTP on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FEEDS = Path(__file__).resolve().parent / "feeds"
TYPES = {".xml": "application/rss+xml", ".json": "application/feed+json"}


class FeedServer:
    """A real HTTP server on a loopback port: /feeds/<name> serves tests/build/feeds/<name>,
    /missing answers 404, /page an HTML page, /stall accepts and never answers."""

    def __init__(self) -> None:
        self.stalled = threading.Event()
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/stall":
                    release.wait(30)
                    return
                if self.path.startswith("/feeds/") and (FEEDS / self.path[7:]).is_file():
                    path = FEEDS / self.path[7:]
                    self._answer(200, path.read_bytes(), TYPES.get(path.suffix, "text/xml"))
                elif self.path == "/page":
                    self._answer(200, b"<!doctype html><title>Home</title><p>Hi</p>", "text/html")
                else:
                    self._answer(404, b"not found", "text/plain")

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()
    time.sleep(0)
