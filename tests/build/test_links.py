"""`newsletter check --links` against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        if self.path == "/missing":
            self.send_response(404)
        elif self.path == "/no-head" and self.command == "HEAD":
            self.send_response(405)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_broken_links_are_reported_with_their_line(
    runner: CliRunner, workspace: Path, server: str
) -> None:
    path = workspace / "issues/daily/2025-05-20.md"
    path.write_text(
        "---\nnewsletter: daily\ndate: 2025-05-20\nstatus: ready\nsubject: Links\npreheader: Links\narticles:\n"
        f"  - title: Fine\n    url: {server}/fine\n    summary: See [this]({server}/no-head).\n"
        f"  - title: Gone\n    url: {server}/missing\n    summary: Gone.\n"
        "---\n"
    )
    without = runner.invoke(cli, ["-w", str(workspace), "check", str(path)])
    assert without.exit_code == 0
    result = runner.invoke(cli, ["-w", str(workspace), "check", "--links", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"issues/daily/2025-05-20.md:12: error: broken link {server}/missing: HTTP 404\n"
        "1 error, 0 warnings\n"
    )


def test_reference_links_and_autolinks_are_checked_too(
    runner: CliRunner, workspace: Path, server: str
) -> None:
    """--links follows every link the Markdown renders, not only `[text](url)` (#11)."""
    path = workspace / "issues/daily/2025-05-20.md"
    path.write_text(
        "---\nnewsletter: daily\ndate: 2025-05-20\nstatus: ready\nsubject: Links\npreheader: Links\narticles:\n"
        f"  - title: Fine\n    url: {server}/fine\n    summary: |\n      See [this][r].\n\n"
        f"      [r]: {server}/missing\n"
        "---\n"
        f"Also <{server}/missing#auto>.\n"
    )
    result = runner.invoke(cli, ["-w", str(workspace), "check", "--links", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"issues/daily/2025-05-20.md:13: error: broken link {server}/missing: HTTP 404\n"
        f"issues/daily/2025-05-20.md:15: error: broken link {server}/missing#auto: HTTP 404\n"
        "2 errors, 0 warnings\n"
    )
