"""The service's pages and the preview in a real headless Chromium (Debian's): the buttons
and forms do what they say, and no page scrolls sideways on a 375px phone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsletter.audience.subscribers import add, listing
from newsletter.audience.tokens import Signer
from newsletter.workspace import Workspace
from tests.conftest import WEB_SECRET

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def site(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, live_server, browser):  # type: ignore[no-untyped-def]
    from newsletter.store import open_store
    from newsletter.web import create_app

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    store = open_store(f"sqlite:///{tmp_path / 'web.db'}")
    add(store, "jane.doe@example.com", "daily", name="Jane")
    add(store, "jane.doe@example.com", "weekly")
    server = live_server(create_app(Workspace(workspace), store))
    server.store = store
    server.workspace = workspace
    yield server
    store.close()


def open_page(browser, url: str, width: int = 375):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    page.goto(url)
    return page


def newsletters(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {p.email: p.newsletters for p in listing(store)}.get("jane.doe@example.com", {})


def token(purpose: str, newsletter: str | None = None) -> str:
    return Signer(WEB_SECRET).make(purpose, 1, newsletter)  # type: ignore[arg-type]


def test_the_unsubscribe_button(site, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, f"{site.url}/unsubscribe/{token('unsubscribe', 'daily')}")
    assert page.evaluate(OVERFLOW) <= 0
    assert page.locator("h1").inner_text() == "Unsubscribe from The Daily Brief?"
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed")
    assert page.evaluate(OVERFLOW) <= 0
    assert newsletters(site.store) == {"daily": "unsubscribed", "weekly": "subscribed"}


def serious_violations(page) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [(v["id"], v["impact"]) for v in found if v["impact"] in ("serious", "critical")]


def emailed_link(site, kind: str, seen: set[Path]) -> str:  # type: ignore[no-untyped-def]
    """The path of the link in the next `kind` notice to arrive in the outbox."""
    outbox = site.workspace / "outbox" / "notices"
    deadline = time.monotonic() + 10
    while True:
        new = set(outbox.glob(f"*-{kind}-*.eml")) - seen if outbox.is_dir() else set()
        if new:
            break
        assert time.monotonic() < deadline, f"no {kind} email in the outbox"
        time.sleep(0.05)
    (message,) = new
    seen.add(message)
    raw = message.read_text().replace("=\n", "")
    link = re.search(r"https://newsletters\.harbourledger\.example/(?:data|confirm)/[^\s<\"]+", raw)
    assert link
    return urlsplit(link.group(0)).path


def test_the_preferences_form(site, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, f"{site.url}/preferences/{token('preferences')}")
    assert page.evaluate(OVERFLOW) <= 0
    assert serious_violations(page) == []
    page.get_by_label("The Daily Brief").uncheck()
    page.get_by_label("Green Economy").check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_selector("text=Saved.")
    assert page.evaluate(OVERFLOW) <= 0
    # leaving is at once; joining is a sign-up: pending, and a confirmation email for it
    page.get_by_text("We have emailed j***@example.com a link to confirm Green Economy").wait_for()
    assert newsletters(site.store) == {
        "daily": "unsubscribed",
        "weekly": "subscribed",
        "green": "pending",
    }
    assert page.get_by_label("Green Economy").is_checked()
    seen: set[Path] = set()
    confirm = open_page(browser, site.url + emailed_link(site, "confirm", seen))
    confirm.get_by_role("button", name="Confirm my subscription").click()
    confirm.wait_for_selector("text=You are subscribed")
    assert newsletters(site.store)["green"] == "subscribed"
    # "download my data" emails a link; its page asks, then the browser downloads a JSON file
    page.get_by_role("button", name="Download my data").click()
    page.wait_for_selector("text=Check your inbox")
    assert page.evaluate(OVERFLOW) <= 0
    ask = open_page(browser, site.url + emailed_link(site, "data", seen))
    ask.wait_for_selector("text=Download your data?")
    assert ask.evaluate(OVERFLOW) <= 0
    assert serious_violations(ask) == []
    with ask.expect_download() as download:
        ask.get_by_role("button", name="Download my data").click()
    assert download.value.suggested_filename == "my-newsletter-data.json"
    data = json.loads(Path(download.value.path()).read_text())
    assert data["subscriber"]["email"] == "jane.doe@example.com"
    ask.get_by_role("link", name="Back to your newsletters").click()
    ask.wait_for_selector("text=Your newsletters")
    # "delete me" emails a link too, whose page asks first and fits a phone
    page.get_by_role("link", name="Back to your newsletters").click()
    page.get_by_role("button", name="Delete me").click()
    page.wait_for_selector("text=Check your inbox")
    delete = open_page(browser, site.url + emailed_link(site, "data", seen))
    delete.wait_for_selector("text=Delete everything about you?")
    assert delete.evaluate(OVERFLOW) <= 0
    assert serious_violations(delete) == []
    assert newsletters(site.store)  # asking changed nothing
    delete.get_by_role("button", name="Yes, delete me").click()
    delete.wait_for_selector("text=We have erased your address")
    assert newsletters(site.store) == {}


def test_subscribe_then_confirm_from_the_email(site, browser) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, f"{site.url}/subscribe")
    assert page.evaluate(OVERFLOW) <= 0
    page.get_by_label("Your email address").fill("new.reader@example.net")
    page.get_by_label("The Daily Brief").uncheck()
    page.get_by_label("Green Economy").check()
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("text=Check your inbox")
    assert page.evaluate(OVERFLOW) <= 0
    outbox = site.workspace / "outbox" / "notices"
    deadline = time.monotonic() + 10
    while not list(outbox.glob("*.eml")) if outbox.is_dir() else True:
        assert time.monotonic() < deadline, "no confirmation email in the outbox"
        time.sleep(0.05)
    (message,) = outbox.glob("*.eml")
    raw = message.read_text()
    link = re.search(
        r"https://newsletters\.harbourledger\.example/confirm/\S+", raw.replace("=\n", "")
    )
    assert link
    path = urlsplit(link.group(0)).path
    confirm = open_page(browser, site.url + path)
    assert confirm.evaluate(OVERFLOW) <= 0
    people = {p.email: p.newsletters for p in listing(site.store)}
    assert people["new.reader@example.net"] == {
        "green": "pending"
    }  # opening the link is not enough
    confirm.get_by_role("button", name="Confirm my subscription").click()
    confirm.wait_for_selector("text=You are subscribed")
    assert confirm.evaluate(OVERFLOW) <= 0
    people = {p.email: p.newsletters for p in listing(site.store)}
    assert people["new.reader@example.net"] == {"green": "subscribed"}


def test_error_pages_fit_a_phone(site, browser) -> None:  # type: ignore[no-untyped-def]
    for path in ("/unsubscribe/bad", "/confirm/" + "x" * 300, "/nowhere"):
        page = open_page(browser, site.url + path)
        assert page.evaluate(OVERFLOW) <= 0, path
        assert page.locator("h1").inner_text() == "Sorry"


def test_the_preview_switches(workspace: Path, live_server, browser) -> None:  # type: ignore[no-untyped-def]
    from newsletter.web.preview import create_preview_app

    ws = Workspace(workspace)
    server = live_server(
        create_preview_app(ws, workspace / "issues/daily/2025-05-14.md", watch=False)
    )
    page = open_page(browser, server.url + "/", width=1280)
    frame = page.locator("#email")
    assert frame.bounding_box()["width"] == 800
    page.click("[data-switch=width-phone]")
    page.wait_for_url("**/?width=phone*")
    assert page.locator("#email").bounding_box()["width"] == 375
    email = page.frame_locator("#email")
    free_text = email.locator("body").inner_text()
    page.click("[data-switch=tier-premium]")
    page.wait_for_url("**tier=premium*")
    premium_text = page.frame_locator("#email").locator("body").inner_text()
    assert free_text != premium_text and len(premium_text) > len(free_text)
    page.click("[data-switch=format-text]")
    page.wait_for_url("**format=text*")
    assert "THE HARBOUR LEDGER" in page.frame_locator("#email").locator("pre").inner_text()
    phone = open_page(browser, server.url + "/?width=phone", width=375)
    assert phone.evaluate(OVERFLOW) <= 0
