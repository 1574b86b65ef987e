"""Every page a reader can be shown is valid HTML5 by the Nu HTML Checker (0 errors): each
web version of the sample, the archive page, and every page of `newsletter serve`. The
pages are written into one folder and checked by one run of vnu for the whole session."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from pathlib import Path

import pytest

from newsletter.build.pipeline import build
from newsletter.workspace import Workspace
from tests.conftest import REPO, WEB_SECRET, nu_check

ISSUES = sorted(f"{p.parent.name}/{p.stem}" for p in (REPO / "issues").glob("*/*.md"))
SERVED = (
    "unsubscribe",
    "unsubscribed",
    "preferences",
    "preferences-saved",
    "data-confirm",
    "delete-confirm",
    "deleted",
    "subscribe",
    "subscribe-invalid",
    "check-inbox",
    "confirm",
    "confirmed",
    "error-bad-token",
    "error-not-found",
    "error-csrf",
)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _mailed(root: Path, to: str, kind: str) -> str:
    """The path of the `kind` link (/confirm/, /data/) in the notice mailed to `to`."""
    for path in sorted((root / "outbox" / "notices").glob("*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] != to:
            continue
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        if found := re.search(rf"https://newsletters\.harbourledger\.example({kind}\S+)", text):
            return found.group(1)
    raise AssertionError(f"no {kind} link mailed to {to}")


def _served_pages(root: Path, into: Path) -> None:
    """Every page of the service, rendered by the real app through a test client."""
    from starlette.testclient import TestClient

    from newsletter.audience.subscribers import add
    from newsletter.audience.tokens import Signer
    from newsletter.store import open_store, people
    from newsletter.web import create_app

    store = open_store(f"sqlite:///{root / 'pages.db'}")
    add(store, "jane.doe@example.com", "daily", name="Jane")
    add(store, "jane.doe@example.com", "weekly")
    add(store, "bob@example.org", "daily")
    signer = Signer(WEB_SECRET)  # type: ignore[arg-type]
    pages: dict[str, str] = {}

    def keep(name: str, response, status: int = 200) -> str:  # type: ignore[no-untyped-def]
        assert response.status_code == status, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith("text/html"), name
        pages[name] = response.text
        return response.text

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSLETTER_SECRET", WEB_SECRET)
        app = create_app(Workspace(root), store)
        with TestClient(app, follow_redirects=False) as client:
            unsub = "/unsubscribe/" + signer.make("unsubscribe", 1, "daily")
            keep("unsubscribe", client.get(unsub))
            keep("unsubscribed", client.post(unsub))
            prefs = "/preferences/" + signer.make("preferences", 1, None)
            form = keep("preferences", client.get(prefs))
            keep(
                "preferences-saved",
                client.post(prefs, data={"csrf": _csrf(form), "newsletter": ["weekly"]}),
            )
            form = client.get(prefs).text
            keep("data-asked", client.post(prefs + "/data", data={"csrf": _csrf(form)}))
            keep("data-confirm", client.get(_mailed(root, "jane.doe@example.com", "/data/")))
            with store.begin() as conn:
                bob_id = people.by_key(conn, "bob@example.org").id  # type: ignore[union-attr]
            bob = "/preferences/" + signer.make("preferences", bob_id, None)
            form = client.get(bob).text
            keep("delete-asked", client.post(bob + "/delete", data={"csrf": _csrf(form)}))
            link = _mailed(root, "bob@example.org", "/data/")
            ask = keep("delete-confirm", client.get(link))
            keep("deleted", client.post(link, data={"csrf": _csrf(ask)}))
            form = keep("subscribe", client.get("/subscribe"))
            keep(
                "subscribe-invalid",
                client.post("/subscribe", data={"csrf": _csrf(form), "email": "not an address"}),
                400,
            )
            keep(
                "check-inbox",
                client.post(
                    "/subscribe",
                    data={"csrf": _csrf(form), "email": "new@example.net", "newsletter": ["daily"]},
                ),
            )
            confirm = _mailed(root, "new@example.net", "/confirm/")
            ask = keep("confirm", client.get(confirm))
            keep("confirmed", client.post(confirm, data={"csrf": _csrf(ask)}))
            keep("error-bad-token", client.get("/unsubscribe/not-a-token"), 400)
            keep("error-not-found", client.get("/no/such/page"), 404)
            keep("error-csrf", client.post(prefs, data={"csrf": "forged"}), 403)
    store.close()
    for name, text in pages.items():
        (into / "served" / f"{name}.html").write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
def nu_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("nu-ws")
    shutil.copy(REPO / "newsletter.toml", root)
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    assert build(Workspace(root)).ok
    pages = tmp_path_factory.mktemp("nu-pages")
    for issue in ISSUES:
        target = pages / "web" / f"{issue.replace('/', '-')}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "build" / issue / "index.html", target)
    shutil.copy(root / "build" / "index.html", pages / "archive.html")
    (pages / "served").mkdir()
    _served_pages(root, pages)
    return nu_check(pages)


@pytest.mark.parametrize("issue", ISSUES)
def test_every_web_version_is_valid_html(nu_errors: dict[str, list[str]], issue: str) -> None:
    assert nu_errors[f"web/{issue.replace('/', '-')}.html"] == []


def test_the_archive_page_is_valid_html(nu_errors: dict[str, list[str]]) -> None:
    assert nu_errors["archive.html"] == []


@pytest.mark.parametrize("page", SERVED)
def test_every_page_of_the_service_is_valid_html(
    nu_errors: dict[str, list[str]], page: str
) -> None:
    assert nu_errors[f"served/{page}.html"] == []


def test_the_checker_finds_errors(tmp_path: Path) -> None:
    """The check itself: an email's markup (what the web version was) has errors."""
    (tmp_path / "bad.html").write_text(
        '<!doctype html><html lang="en"><head><title>t</title></head>'
        '<body><p width="600">x</p><td valign="top">y</td></body></html>'
    )
    assert len(nu_check(tmp_path)["bad.html"]) >= 2
