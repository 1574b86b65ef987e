"""The archive served from build/: the archive page, web versions and feeds; nothing else
(the premium emails live beside the web versions and must stay unreachable)."""

from __future__ import annotations

from click.testing import CliRunner
from starlette.testclient import TestClient

from newsletter.cli import cli


def build(client: TestClient) -> None:
    result = CliRunner().invoke(cli, ["-w", str(client.workspace), "build"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output


def test_archive_web_versions_and_feeds(service: TestClient) -> None:
    assert service.get("/").status_code == 404  # nothing built yet: a page, not a crash
    build(service)
    home = service.get("/")
    assert home.status_code == 200 and "The Daily Brief" in home.text
    issue = service.get("/daily/2025-05-14/")
    assert issue.status_code == 200
    assert issue.text == (service.workspace / "build/daily/2025-05-14/index.html").read_text()  # type: ignore[attr-defined]
    assert service.get("/daily/2025-05-14").text == issue.text  # no redirect needed
    feed = service.get("/daily/feed.xml")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith(
        "application/atom+xml"
    )
    assert feed.text.startswith("<?xml") and "<feed" in feed.text


def test_nothing_else_in_build_is_reachable(service: TestClient) -> None:
    build(service)
    built = service.workspace / "build/daily/2025-05-14"  # type: ignore[attr-defined]
    secrets = {(built / name).read_text() for name in ("premium.html", "free.txt", "manifest.json")}
    for path in (
        "/daily/2025-05-14/premium.html",
        "/daily/2025-05-14/free.txt",
        "/daily/2025-05-14/manifest.json",
        "/daily/2025-05-14/../../newsletter.toml",
        "/daily/..%2F..%2Fnewsletter.toml/",
        "/monthly/2025-05-14/",
        "/daily/2025-5-14/",
        "/.secrets",
    ):
        response = service.get(path)
        assert response.status_code in (404, 405), path
        assert response.text not in secrets, path


def test_a_draft_is_not_published(service: TestClient) -> None:
    draft = service.workspace / "issues/daily/2025-05-13.md"  # type: ignore[attr-defined]
    draft.write_text(draft.read_text().replace("status: ready", "status: draft"))
    build(service)
    built = service.workspace / "build/daily/2025-05-13/index.html"  # type: ignore[attr-defined]
    response = service.get("/daily/2025-05-13/")
    assert response.status_code == 404 and response.text != built.read_text()
    assert "2025-05-13" not in service.get("/").text
    assert service.get("/daily/2025-05-14/").status_code == 200
