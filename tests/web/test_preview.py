"""`newsletter preview`: the issue as received (tiers, text, sample values), errors shown in
the page, and a real reload when a file changes (watchfiles under a real uvicorn)."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner
from starlette.testclient import TestClient

from newsletter.build.pipeline import issue_path, render_preview
from newsletter.cli import cli
from newsletter.web.preview import create_preview_app
from newsletter.workspace import Workspace

ISSUE = "issues/daily/2025-05-14.md"


def client(workspace: Path, watch: bool = False) -> TestClient:
    ws = Workspace(workspace)
    return TestClient(create_preview_app(ws, workspace / ISSUE, watch=watch))


def test_both_tiers_and_the_text_as_received(workspace: Path) -> None:
    with client(workspace) as c:
        shell = c.get("/?width=phone&tier=premium")
        assert shell.status_code == 200
        assert 'style="width: 375px"' in shell.text
        assert 'src="/email?tier=premium&amp;format=html&amp;v=1"' in shell.text
        assert re.findall(r'aria-pressed="true" data-switch="([\w-]+)"', shell.text) == [
            "width-phone",
            "tier-premium",
            "format-html",
        ]
        free = c.get("/email?tier=free&format=html").text
        premium = c.get("/email?tier=premium&format=html").text
        built = render_preview(workspace, workspace / ISSUE)
        assert free == built.emails["free.html"] and premium == built.emails["premium.html"]
        assert free != premium and "Subscribe" in free
        # the per-recipient markers hold sample values, as a reader would see them
        assert "%%" not in free and "/unsubscribe/preview" in free
        text = c.get("/email?tier=premium&format=text").text
        assert text.startswith("<!doctype html>") and "THE HARBOUR LEDGER" in text
        assert "%%" not in text
        # nothing written to build/
        assert not (workspace / "build").exists()


def test_errors_are_shown_in_the_page_and_it_recovers(workspace: Path) -> None:
    path = workspace / ISSUE
    good = path.read_text()
    with client(workspace) as c:
        path.write_text(good.replace("subject:", "subjekt:", 1))
        c.app.state.preview.reload()  # type: ignore[attr-defined]
        shell = c.get("/")
        assert shell.status_code == 200 and 'role="alert"' in shell.text
        assert "issues/daily/2025-05-14.md:5: error: " in shell.text
        assert "<iframe" not in shell.text
        assert c.get("/email").status_code == 422
        path.write_text(good)
        c.app.state.preview.reload()  # type: ignore[attr-defined]
        assert "<iframe" in c.get("/").text


def test_a_change_to_the_issue_file_reloads_the_preview(workspace: Path, live_server) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(workspace)
    server = live_server(create_preview_app(ws, workspace / ISSUE))

    def get(path: str) -> str:
        with urllib.request.urlopen(server.url + path, timeout=5) as response:
            return response.read().decode()

    def edit(path: Path, text: str, what: str) -> None:
        """Write, and write again every 2 s until the preview moves on (the watcher may
        still be starting when the first write lands)."""
        version = get("/version")
        deadline = time.monotonic() + 20
        while True:
            path.write_text(text)
            written = time.monotonic()
            while time.monotonic() - written < 2:
                if get("/version") != version:
                    return
                time.sleep(0.05)
            assert time.monotonic() < deadline, f"the preview never noticed the {what} change"

    issue = workspace / ISSUE
    edit(issue, issue.read_text().replace('subject: "', 'subject: "Updated ', 1), "issue")
    assert "<title>Preview: Updated Exporters" in get("/")
    template = workspace / "templates" / "email" / "partials" / "header.mjml.j2"
    edit(template, template.read_text() + "\n", "template")
    # a broken config shows its error, with its line, in the page
    config = workspace / "newsletter.toml"
    edit(
        config, config.read_text().replace("[publication]", "[publication]\nnaem = 1", 1), "config"
    )
    assert re.search(r"newsletter\.toml:\d+: error: .*naem", get("/"))


def test_which_issue(workspace: Path, runner: CliRunner) -> None:
    ws = Workspace(workspace)
    newest = workspace / "issues/green/2025-05-17.md"
    newest.touch()
    assert issue_path(ws, None) == newest
    assert issue_path(ws, "daily/2025-05-14") == workspace / ISSUE
    result = runner.invoke(cli, ["-w", str(workspace), "preview", "daily/2031-01-01"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: issues/daily/2031-01-01.md: no such issue file"


def test_a_billion_laughs_file_is_shown_in_the_page(workspace: Path) -> None:
    from tests.build.test_issuefile import BILLION_LAUGHS

    with client(workspace) as c:
        (workspace / ISSUE).write_text(BILLION_LAUGHS)
        c.app.state.preview.reload()  # type: ignore[attr-defined]
        shell = c.get("/")
        assert (
            "issues/daily/2025-05-14.md:2: error: YAML anchors (&amp;name) and aliases "
            "(*name) are not allowed in issue files" in shell.text
        )


def test_the_watcher_survives_any_error_and_shows_it(workspace: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An unexpected failure of the renderer must not end the watch loop (the page would
    never reload again): it is shown in the page, and the next change renders again."""
    import newsletter.web.preview as web_preview

    with client(workspace) as c:
        state = c.app.state.preview  # type: ignore[attr-defined]
        version = state.version

        def broken(root: Path, path: Path) -> object:
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(web_preview, "render_preview", broken)
        state.reload()  # what the watch loop runs (in a thread) on each change
        assert state.version == version + 1
        shell = c.get("/")
        assert (
            "issues/daily/2025-05-14.md: error: the preview could not render the issue: "
            "RecursionError: maximum recursion depth exceeded" in shell.text
        )
        assert c.get("/email").status_code == 422
        monkeypatch.undo()
        state.reload()
        assert "<iframe" in c.get("/").text
