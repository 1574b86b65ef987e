"""Unsubscribe: the page, and the RFC 8058 one-click POST exactly as Gmail sends it."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from newsletter.audience.subscribers import listing
from newsletter.audience.tokens import Signer
from tests.conftest import WEB_SECRET

SECRET = WEB_SECRET


def statuses(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return next(iter(listing(store))).newsletters


def link(newsletter: str = "daily", subscriber_id: int = 1, purpose: str = "unsubscribe") -> str:
    return "/unsubscribe/" + Signer(SECRET).make(purpose, subscriber_id, newsletter)  # type: ignore[arg-type]


def test_a_get_shows_the_page_and_changes_nothing(service: TestClient) -> None:
    response = service.get(link())
    assert response.status_code == 200
    assert "Unsubscribe from The Daily Brief?" in response.text
    assert "j***@example.com" in response.text and "jane.doe" not in response.text
    assert '<form method="post"' in response.text
    assert statuses(service.store) == {"daily": "subscribed", "weekly": "subscribed"}  # type: ignore[attr-defined]


def test_the_one_click_post_as_gmail_sends_it(service: TestClient) -> None:
    response = service.post(
        link(),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert statuses(service.store) == {"daily": "unsubscribed", "weekly": "subscribed"}  # type: ignore[attr-defined]
    again = service.post(link(), data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # idempotent, never a redirect
    assert statuses(service.store) == {"daily": "unsubscribed", "weekly": "subscribed"}  # type: ignore[attr-defined]


def test_a_multipart_one_click_post_works_too(service: TestClient) -> None:
    response = service.post(link("weekly"), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert statuses(service.store)["weekly"] == "unsubscribed"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path",
    [
        link()[:-2] + "xx",  # tampered signature
        "/unsubscribe/1.daily"
        + link()[len("/unsubscribe/1.daily") :].replace("", "", 0)[:0]
        + ".abc.def",
        link(purpose="preferences"),  # a token for another purpose
        link("monthly"),  # a newsletter that does not exist
        "/unsubscribe/not-a-token",
    ],
    ids=["tampered", "forged", "other-purpose", "unknown-newsletter", "malformed"],
)
def test_a_bad_token_gets_400_and_changes_nothing(service: TestClient, path: str) -> None:
    for response in (service.get(path), service.post(path, content=b"List-Unsubscribe=One-Click")):
        assert response.status_code == 400
        assert "This unsubscribe link is not valid." in response.text
    assert statuses(service.store) == {"daily": "subscribed", "weekly": "subscribed"}  # type: ignore[attr-defined]


def test_security_headers_and_health(service: TestClient) -> None:
    response = service.get("/healthz")
    assert response.text == "ok\n"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_access_log_never_shows_a_token() -> None:
    import logging

    from newsletter.web import RedactTokens

    token = link()[len("/unsubscribe/") :]
    for path in (f"/unsubscribe/{token}", f"/preferences/{token}?x=1", f"/confirm/{token}"):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "POST", path, "1.1", 200),
            None,
        )
        assert RedactTokens().filter(record)
        shown = record.getMessage()
        assert token not in shown and "/[token]" in shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000"),  # nothing to redact: the text as it was
        ("POST /data/abc.def HTTP/1.1", "POST /data/[token] HTTP/1.1"),
        ("key nlk_abc_DEF-1 refused", "key nlk_[redacted] refused"),
        ("AUTHORIZATION: Basic dXNlcjpwdw==", "AUTHORIZATION: Basic [redacted]"),
        ("{'authorization': 'Bearer xyz'}", "{'authorization': 'Bearer [redacted]'}"),
    ],
)
def test_redact_finds_each_kind_of_secret_whatever_its_case(text: str, shown: str) -> None:
    from newsletter.web import redact

    assert redact(text) == shown


def test_the_page_links_to_preferences_and_nothing_redirects(service: TestClient) -> None:
    page = service.get(link())
    preferences = re.search(r'href="(/preferences/[^"]+)"', page.text)
    assert preferences
    assert "Your newsletters" in service.get(preferences.group(1)).text
    for path in ("/subscribe/", "//evil.example/", "/healthz/", "/unsubscribe/x/"):
        response = service.get(path)
        assert response.status_code == 404 and "location" not in response.headers, path


def test_the_history_tells_the_pages_button_from_the_mail_apps_one_click(
    service: TestClient,
) -> None:
    """Reports count unsubscribes by route: the page's form says it is the page."""
    from newsletter.store import people as q

    page = service.get(link())
    assert '<input type="hidden" name="via" value="page">' in page.text
    service.post(link(), data={"List-Unsubscribe": "One-Click", "via": "page"})
    service.post(
        link("weekly"),
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with service.store.begin() as conn:  # type: ignore[attr-defined]
        person = q.by_id(conn, 1)
        assert person is not None
        history = q.history(conn, person.email_hash)
    left = {h["newsletter"]: h["method"] for h in history if h["action"] == "unsubscribed"}
    assert left == {"daily": "page", "weekly": "one-click"}


def test_readers_one_clicking_at_once_are_each_answered_and_none_is_lost(
    workspace, db_url: str, monkeypatch: pytest.MonkeyPatch, live_server
) -> None:  # type: ignore[no-untyped-def]
    """A real uvicorn, 12 keep-alive clients at once, a tenth of the links posted twice:
    every answer a 200, every reader unsubscribed once with one line of history, through
    the group commit (store/groupcommit.py)."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    from newsletter.audience.addresses import parse
    from newsletter.audience.importer import Importer
    from newsletter.store import open_store
    from newsletter.store import people as q
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    store = open_store(db_url)
    readers = [f"reader{i:03d}@example.com" for i in range(60)]
    (workspace / "readers.csv").write_text("email\n" + "\n".join(readers) + "\n")
    Importer(store, {"daily", "weekly"}, newsletter="daily").run(workspace / "readers.csv")
    with store.begin() as conn:
        ids = [q.by_key(conn, parse(r).key).id for r in readers]  # type: ignore[union-attr]
    app = create_app(Workspace(workspace), store)
    server = live_server(app)
    links = [link("daily", i) for i in ids + ids[::10]]

    def post(chunk: list[str]) -> list[tuple[int, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        answers = []
        for path in chunk:
            conn.request(
                "POST",
                path,
                body=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = conn.getresponse()
            answers.append((response.status, response.read().decode()))
        conn.close()
        return answers

    try:
        with ThreadPoolExecutor(12) as pool:
            answers = [
                a for part in pool.map(post, [links[i::12] for i in range(12)]) for a in part
            ]
        assert [status for status, _ in answers] == [200] * len(links)
        assert all("You are unsubscribed" in text for _, text in answers)
        with store.begin() as conn:
            left = [q.subscriptions_of(conn, i)["daily"]["status"] for i in ids]
            lines = [
                event
                for r in readers
                for event in q.history(conn, parse(r).hash)
                if event["action"] == "unsubscribed"
            ]
        assert left == ["unsubscribed"] * len(ids)
        assert len(lines) == len(ids)
        assert app.state.commits.transactions >= 1
    finally:
        store.close()
