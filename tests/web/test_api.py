"""The subscriber API through the real app: keys and scopes (401/403, revoked keys, the
constant-time comparison), sign-ups both ways (double opt-in as the form does it, and
confirmed by the caller), suppressed and unsubscribed addresses, the consent history's
sources, idempotent retries, pagination that inserts do not disturb, erasure, and 413."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from newsletter.audience import apikeys
from newsletter.audience.subscribers import add, remove
from newsletter.store import people as q
from tests.conftest import WEB_SECRET, Clock

ALL = ["subscribers:read", "subscribers:write", "subscribers:confirm", "stats:read"]


class Api:
    """The app on a test client, and a key per set of scopes."""

    def __init__(self, client: TestClient, store: Any, workspace: Path) -> None:
        self.client = client
        self.store = store
        self.workspace = workspace
        self.keys: dict[str, str] = {}

    def key(self, name: str, *scopes: str) -> str:
        if name not in self.keys:
            _, self.keys[name] = apikeys.create(
                self.store, name, list(scopes), now=dt.datetime.now(dt.UTC)
            )
        return self.keys[name]

    def call(self, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.request(method, path, headers=headers, **kw)

    def history(self, address: str) -> list[dict[str, Any]]:
        from newsletter.audience.addresses import parse

        with self.store.begin() as conn:
            return q.history(conn, parse(address).hash)

    def outbox(self) -> list[email.message.EmailMessage]:
        folder = self.workspace / "outbox" / "notices"
        files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in files
        ]


@pytest.fixture
def api(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, clock: Clock):  # type: ignore[no-untyped-def]
    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    store = open_store(db_url)
    add(store, "jane.doe@example.com", "daily", name="Jane")
    app = create_app(Workspace(workspace), store, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        yield Api(client, store, workspace)
    store.close()


def error_of(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()["error"]
    return body


# -- keys and scopes -------------------------------------------------------------------------


def test_no_key_a_malformed_one_or_an_unknown_one_is_a_json_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nlk_nope"}):
        response = api.client.get("/api/v1/subscribers/1", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert error_of(response)["code"] == "unauthorized"


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    key = api.key("crm", "subscribers:read")
    assert api.call("GET", "/api/v1/subscribers/1", key).status_code == 200
    apikeys.revoke(api.store, "crm", now=dt.datetime.now(dt.UTC))
    response = api.call("GET", "/api/v1/subscribers/1", key)
    assert response.status_code == 401
    assert error_of(response)["message"] == "this API key is unknown or revoked"


@pytest.mark.parametrize(
    ("method", "path", "body", "needs"),
    [
        ("GET", "/api/v1/subscribers/1", None, "subscribers:read"),
        ("GET", "/api/v1/subscribers?email=jane.doe@example.com", None, "subscribers:read"),
        (
            "POST",
            "/api/v1/subscribers",
            {"email": "a@example.com", "newsletters": ["daily"]},
            "subscribers:write",
        ),
        ("PATCH", "/api/v1/subscribers/1", {"tier": "premium"}, "subscribers:write"),
        ("DELETE", "/api/v1/subscribers/1", None, "subscribers:write"),
        ("GET", "/api/v1/issues/daily/2025-05-14/stats", None, "stats:read"),
    ],
    ids=["get", "find", "post", "patch", "delete", "stats"],
)
def test_a_key_without_the_scope_is_a_json_403(
    api: Api, method: str, path: str, body: Any, needs: str
) -> None:
    others = [
        s
        for s in ALL
        if s != needs and not (needs == "subscribers:write" and s == "subscribers:confirm")
    ]
    key = api.key("other", *others)
    response = api.call(method, path, key, json=body)
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "forbidden",
        "message": f"this API key does not have the scope {needs}",
    }
    assert api.history("jane.doe@example.com")[-1]["method"] == "command"  # nothing changed


def test_confirmed_needs_the_confirm_scope(api: Api) -> None:
    key = api.key("site", "subscribers:write", "subscribers:read")
    body = {"email": "new@example.com", "newsletters": ["daily"], "confirmed": True}
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 403
    assert "subscribers:confirm" in error_of(response)["message"]
    assert api.call("GET", "/api/v1/subscribers?email=new@example.com", key).json()["data"] == []


def test_keys_are_compared_in_constant_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    key = api.key("crm", "subscribers:read")
    seen: list[tuple[str, str]] = []
    real = apikeys.hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(apikeys.hmac, "compare_digest", spy)
    assert api.call("GET", "/api/v1/subscribers/1", key).status_code == 200
    assert seen == [(apikeys.digest(key), apikeys.digest(key))]


def test_the_api_sets_no_cors_headers(api: Api) -> None:
    key = api.key("crm", "subscribers:read")
    origin = {"Origin": "https://www.harbourledger.example"}
    got = api.call("GET", "/api/v1/subscribers/1", key, headers=origin)
    preflight = api.call(
        "OPTIONS",
        "/api/v1/subscribers",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    for response in (got, preflight):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    assert preflight.status_code == 405
    assert error_of(preflight)["code"] == "method_not_allowed"


# -- POST ---------------------------------------------------------------------------------------


def test_a_sign_up_without_confirmed_is_the_forms_double_opt_in(api: Api) -> None:
    key = api.key("site", "subscribers:write", "subscribers:read")
    body = {
        "email": "New.Reader@Example.net",
        "newsletters": ["daily", "green"],
        "source": "article-box",
    }
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 201
    got = response.json()
    assert got["email"] == "New.Reader@Example.net"
    assert got["newsletters"] == {"daily": "pending", "green": "pending"}
    assert got["tier"] == "free" and got["source"] == "article-box"
    (message,) = api.outbox()
    assert message["To"] == "New.Reader@Example.net"
    assert message["Subject"] == "Confirm your subscription to The Daily Brief and Green Economy"
    history = api.history("new.reader@example.net")
    assert [(h["newsletter"], h["action"], h["method"]) for h in history] == [
        ("daily", "pending", "api:site"),
        ("green", "pending", "api:site"),
    ]
    again = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert again.status_code == 200  # known now


def test_the_per_address_limit_is_the_forms(api: Api, clock: Clock) -> None:
    """[serve] signups_per_address (3 a day) counts the form's and the API's requests."""
    from newsletter.audience import optin

    optin.request(
        api.store, "busy@example.com", ["daily"], per_address=3, now=dt.datetime.now(dt.UTC)
    )
    key = api.key("site", "subscribers:write")
    body = {"email": "busy@example.com", "newsletters": ["daily"]}
    for _ in range(2):
        clock.advance(60)
        assert api.call("POST", "/api/v1/subscribers", key, json=body).status_code == 200
    clock.advance(60)
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 429
    assert error_of(response)["code"] == "limited"
    assert len(api.outbox()) == 2  # the API's two (the form's was not mailed by this test)


def test_confirmed_subscribes_at_once_and_writes_the_history(api: Api) -> None:
    key = api.key("site", "subscribers:write", "subscribers:confirm", "subscribers:read")
    body = {
        "email": "logged.in@example.com",
        "name": "Lou",
        "tier": "premium",
        "newsletters": ["daily", "weekly"],
        "confirmed": True,
        "source": "account page",
    }
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 201
    assert response.json()["newsletters"] == {"daily": "subscribed", "weekly": "subscribed"}
    assert response.json()["tier"] == "premium"
    assert api.outbox() == []
    history = api.history("logged.in@example.com")
    assert {(h["action"], h["method"], h["detail"]) for h in history} == {
        ("subscribed", "api:site", "confirmed by the caller; source: account page")
    }


def test_a_write_only_key_learns_only_what_it_sent(api: Api) -> None:
    key = api.key("site", "subscribers:write", "subscribers:confirm")
    body = {"email": "jane.doe@example.com", "newsletters": ["green"], "confirmed": True}
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 200
    assert response.json() == {"id": 1, "newsletters": {"green": "subscribed"}}  # no name, no daily


def test_a_suppressed_address_is_never_subscribed(api: Api) -> None:
    from newsletter.audience.addresses import parse

    with api.store.begin() as conn:
        q.suppress(
            conn,
            [
                q.Suppression(
                    parse("bounced@example.com").hash, "bounce", "test", dt.datetime.now(dt.UTC)
                )
            ],
        )
    key = api.key("site", "subscribers:write", "subscribers:confirm")
    for confirmed in (False, True):
        body = {"email": "Bounced@example.com", "newsletters": ["daily"], "confirmed": confirmed}
        response = api.call("POST", "/api/v1/subscribers", key, json=body)
        assert response.status_code == 409
        assert error_of(response)["code"] == "suppressed"
    assert api.outbox() == []


def test_an_unsubscribed_address_comes_back_only_with_resubscribe_and_only_as_named(
    api: Api,
) -> None:
    add(api.store, "jane.doe@example.com", "weekly")
    remove(api.store, "jane.doe@example.com")  # daily and weekly
    key = api.key("site", "subscribers:write", "subscribers:confirm", "subscribers:read")
    body: dict[str, Any] = {
        "email": "jane.doe@example.com",
        "newsletters": ["daily"],
        "confirmed": True,
    }
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 409
    assert error_of(response)["code"] == "unsubscribed"
    assert error_of(response)["field"] == "resubscribe"
    body["resubscribe"] = True
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 200
    assert response.json()["newsletters"] == {"daily": "subscribed", "weekly": "unsubscribed"}


def test_an_invalid_address_is_a_422_in_email_validators_words(api: Api) -> None:
    key = api.key("site", "subscribers:write")
    body = {"email": "someone@", "newsletters": ["daily"]}
    response = api.call("POST", "/api/v1/subscribers", key, json=body)
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid",
        "field": "email",
        "message": "'someone@' is not a valid address: There must be something after the @-sign.",
    }


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b"[]", 422, "body"),
        (b'{"email": "a@example.com"}', 422, "newsletters"),
        (b'{"email": "a@example.com", "newsletters": ["nope"]}', 422, "newsletters"),
        (b'{"email": "a@example.com", "newsletters": ["daily"], "tier": "gold"}', 422, "tier"),
        (b'{"email": "a@example.com", "newsletters": ["daily"], "name": "a\\u0000b"}', 422, "name"),
        (b'{"email": "a@example.com", "newsletters": ["daily"], "name": "\\ud800"}', 422, "name"),
        (b'{"email": "a@example.com", "newsletters": ["daily"], "confirmed": 1}', 422, "confirmed"),
        (b'{"email": "a@example.com", "newsletters": ["daily"], "colour": "red"}', 422, "colour"),
        (b"[" * 100_000, 400, None),
    ],
    ids=[
        "not-json",
        "not-object",
        "no-newsletters",
        "unknown-newsletter",
        "tier",
        "nul",
        "surrogate",
        "not-bool",
        "unknown-field",
        "deep",
    ],
)
def test_bad_input_is_a_json_error_naming_the_field(
    api: Api, body: bytes, status: int, field: str | None
) -> None:
    key = api.key("site", "subscribers:write")
    response = api.call("POST", "/api/v1/subscribers", key, content=body)
    assert response.status_code == status
    assert error_of(response).get("field") == field


def test_a_body_over_a_megabyte_is_a_413_before_it_is_read(api: Api) -> None:
    key = api.key("site", "subscribers:write")
    body = b'{"email": "a@example.com", "name": "' + b"x" * (1024 * 1024) + b'"}'
    response = api.call("POST", "/api/v1/subscribers", key, content=body)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


# -- idempotency -------------------------------------------------------------------------------


def test_a_retried_post_replays_its_first_answer_and_changes_nothing(api: Api) -> None:
    key = api.key("site", "subscribers:write", "subscribers:read")
    body = {"email": "retry@example.com", "newsletters": ["daily"]}
    headers = {"Idempotency-Key": "order-4711"}
    first = api.call("POST", "/api/v1/subscribers", key, json=body, headers=headers)
    second = api.call("POST", "/api/v1/subscribers", key, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(api.history("retry@example.com")) == 1
    assert len(api.outbox()) == 1
    other = api.call(
        "POST", "/api/v1/subscribers", key, json={**body, "name": "Other"}, headers=headers
    )
    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_mismatch"
    assert error_of(other)["field"] == "Idempotency-Key"
    fresh = api.call(
        "POST", "/api/v1/subscribers", key, json=body, headers={"Idempotency-Key": "new"}
    )
    assert fresh.status_code == 200  # a new key is a new request


# -- GET -------------------------------------------------------------------------------------------


def test_get_by_id_and_by_the_normalised_address(api: Api) -> None:
    key = api.key("crm", "subscribers:read")
    by_id = api.call("GET", "/api/v1/subscribers/1", key).json()
    assert by_id["email"] == "jane.doe@example.com" and by_id["newsletters"] == {
        "daily": "subscribed"
    }
    assert by_id["suppressed"] is None and by_id["tier"] == "free"
    found = api.call("GET", "/api/v1/subscribers?email=Jane.Doe@EXAMPLE.com", key).json()
    assert found == {"data": [by_id], "next_cursor": None}
    missing = api.call("GET", "/api/v1/subscribers/999", key)
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    assert api.call("GET", "/api/v1/subscribers/abc", key).status_code == 404


def test_pages_are_stable_under_inserts(api: Api) -> None:
    key = api.key("crm", "subscribers:read", "subscribers:write", "subscribers:confirm")
    for i in range(24):
        add(api.store, f"reader{i:02}@example.com", "daily")
    seen: list[int] = []
    cursor = None
    inserted = 0
    while True:
        path = "/api/v1/subscribers?newsletter=daily&limit=10" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = api.call("GET", path, key).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        for _ in range(2):  # between two pages, two sign-ups
            body = {
                "email": f"late{inserted}@example.com",
                "newsletters": ["daily"],
                "confirmed": True,
            }
            assert api.call("POST", "/api/v1/subscribers", key, json=body).status_code == 201
            inserted += 1
    assert inserted == 4
    assert len(seen) == len(set(seen)) == 25 + 4  # Jane, 24 readers, the late ones: each once
    assert seen == sorted(seen)


def test_updated_since_shows_an_unsubscribe(api: Api, clock: Clock) -> None:
    key = api.key("crm", "subscribers:read")
    add(api.store, "stays@example.com", "daily", now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    remove(api.store, "jane.doe@example.com", "daily")
    response = api.call(
        "GET", "/api/v1/subscribers", key, params={"updated_since": since, "status": "unsubscribed"}
    )
    assert [p["email"] for p in response.json()["data"]] == ["jane.doe@example.com"]
    everyone = api.call("GET", "/api/v1/subscribers", key, params={"updated_since": since})
    assert [p["email"] for p in everyone.json()["data"]] == ["jane.doe@example.com"]
    bad = api.call("GET", "/api/v1/subscribers", key, params={"updated_since": "yesterday"})
    assert bad.status_code == 422 and error_of(bad)["field"] == "updated_since"
    bad = api.call("GET", "/api/v1/subscribers", key, params={"cursor": "bm9wZQ"})
    assert bad.status_code == 422 and error_of(bad)["field"] == "cursor"


# -- PATCH and DELETE ------------------------------------------------------------------------------


def test_a_tier_change_is_in_the_history_with_its_key(api: Api) -> None:
    key = api.key("paywall", "subscribers:write", "subscribers:read")
    response = api.call("PATCH", "/api/v1/subscribers/1", key, json={"tier": "premium"})
    assert response.status_code == 200 and response.json()["tier"] == "premium"
    last = api.history("jane.doe@example.com")[-1]
    assert (last["action"], last["method"], last["detail"]) == (
        "tier",
        "api:paywall",
        "free → premium",
    )
    again = api.call("PATCH", "/api/v1/subscribers/1", key, json={"tier": "premium"})
    assert again.status_code == 200
    assert len(api.history("jane.doe@example.com")) == 2  # no change, no line


def test_patch_unsubscribes_and_subscribing_needs_the_confirm_scope(api: Api) -> None:
    key = api.key("crm", "subscribers:write", "subscribers:read")
    off = {"newsletters": {"daily": "unsubscribed"}}
    response = api.call("PATCH", "/api/v1/subscribers/1", key, json=off)
    assert response.json()["newsletters"] == {"daily": "unsubscribed"}
    on = {"newsletters": {"daily": "subscribed"}}
    assert api.call("PATCH", "/api/v1/subscribers/1", key, json=on).status_code == 403
    vouching = api.key("site", "subscribers:write", "subscribers:confirm")
    response = api.call("PATCH", "/api/v1/subscribers/1", vouching, json=on)
    assert response.json() == {"id": 1, "newsletters": {"daily": "subscribed"}}
    assert api.call("PATCH", "/api/v1/subscribers/99", key, json=off).status_code == 404


def test_a_send_under_way_keeps_the_tier_it_fixed(api: Api) -> None:
    from newsletter.store import journal

    now = dt.datetime.now(dt.UTC)
    with api.store.begin() as conn:
        journal.start(conn, "daily/2025-05-14", "daily", "outbox", now)
    key = api.key("paywall", "subscribers:write")
    assert (
        api.call("PATCH", "/api/v1/subscribers/1", key, json={"tier": "premium"}).status_code == 200
    )
    with api.store.begin() as conn:
        (claimed,) = journal.claim(
            conn, "daily/2025-05-14", "daily", "w1", 10, now, dt.timedelta(minutes=5)
        )
    assert claimed.tier == "free"
    with api.store.begin() as conn:
        journal.start(conn, "daily/2025-05-15", "daily", "outbox", now)
        (claimed,) = journal.claim(
            conn, "daily/2025-05-15", "daily", "w1", 10, now, dt.timedelta(minutes=5)
        )
    assert claimed.tier == "premium"


def test_delete_is_erasure(api: Api) -> None:
    key = api.key("crm", "subscribers:write", "subscribers:read", "subscribers:confirm")
    response = api.call("DELETE", "/api/v1/subscribers/1", key)
    assert response.status_code == 204 and response.content == b""
    assert api.call("GET", "/api/v1/subscribers/1", key).status_code == 404
    assert (
        api.call("GET", "/api/v1/subscribers?email=jane.doe@example.com", key).json()["data"] == []
    )
    assert api.history("jane.doe@example.com")[-1]["action"] == "erased"
    assert api.history("jane.doe@example.com")[-1]["method"] == "api:crm"
    body = {"email": "jane.doe@example.com", "newsletters": ["daily"], "confirmed": True}
    assert error_of(api.call("POST", "/api/v1/subscribers", key, json=body))["code"] == "suppressed"
    assert api.call("DELETE", "/api/v1/subscribers/1", key).status_code == 404


# -- stats ---------------------------------------------------------------------------------------


def test_issue_stats_are_the_figures_of_stats_json(
    api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from newsletter.cli import cli
    from newsletter.store import journal

    now = dt.datetime.now(dt.UTC)
    with api.store.begin() as conn:
        journal.start(conn, "daily/2025-05-14", "daily", "outbox", now)
        claimed = journal.claim(
            conn, "daily/2025-05-14", "daily", "w1", 10, now, dt.timedelta(minutes=5)
        )
        journal.mark(conn, [c.journal_id for c in claimed], "sent", now)
    key = api.key("board", "stats:read")
    response = api.call("GET", "/api/v1/issues/daily/2025-05-14/stats", key)
    assert response.status_code == 200
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    printed = CliRunner().invoke(
        cli, ["-w", str(api.workspace), "stats", "daily/2025-05-14", "--json"]
    )
    assert printed.exit_code == 0, printed.output
    assert response.json() == json.loads(printed.stdout)
    assert response.json()["sent"] == 1
    for path in (
        "/api/v1/issues/daily/2025-05-15/stats",
        "/api/v1/issues/nope/2025-05-14/stats",
        "/api/v1/issues/daily/14-05-2025/stats",
    ):
        missing = api.call("GET", path, key)
        assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


# -- several workers (PostgreSQL) ------------------------------------------------------------------


def test_idempotency_and_new_addresses_hold_across_workers(
    workspace: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps (two `serve` workers) on one PostgreSQL database, eight threads at once: the
    same retry is answered once (one subscriber, one consent line, one email), and the same
    new address without an Idempotency-Key is created once, and no 500."""
    import threading

    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    stores = [open_store(pg_url), open_store(pg_url)]
    _, key = apikeys.create(
        stores[0], "site", ["subscribers:write", "subscribers:read"], now=dt.datetime.now(dt.UTC)
    )
    clients = [TestClient(create_app(Workspace(workspace), s)) for s in stores]
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def post(client: TestClient, email: str, retry: str | None) -> None:
        headers = {
            "Authorization": f"Bearer {key}",
            **({"Idempotency-Key": retry} if retry else {}),
        }
        response = client.post(
            "/api/v1/subscribers", headers=headers, json={"email": email, "newsletters": ["daily"]}
        )
        with lock:
            answers.append((response.status_code, response.json()))

    for address, retry in (("once@example.com", "k-1"), ("twice@example.com", None)):
        answers.clear()
        threads = [
            threading.Thread(target=post, args=(clients[i % 2], address, retry)) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(s for s, _ in answers)
        # no 500: one creates, the others find it (200) or meet the per-address limit (429)
        assert statuses.count(201) == 1 or retry, statuses
        assert all(s in (200, 201, 429) for s in statuses), statuses
        if retry:
            assert statuses == [201] * 8  # the first answer, replayed
            assert len({json_text(a) for _, a in answers}) == 1
    api = Api(clients[0], stores[0], workspace)
    assert len(api.history("once@example.com")) == 1
    assert len(api.outbox()) >= 2  # once@, and twice@ at least once
    for client in clients:
        client.close()
    for s in stores:
        s.close()


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def test_a_replaced_database_is_a_json_503(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    database = tmp_path / "newsletter.db"
    store = open_store(f"sqlite:///{database}")
    _, key = apikeys.create(store, "crm", ["subscribers:read"], now=dt.datetime.now(dt.UTC))
    client = TestClient(create_app(Workspace(workspace), store))
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/subscribers/1", headers=headers).status_code == 404
    copy = tmp_path / "restored.db"
    copy.write_bytes(database.read_bytes())
    copy.replace(database)
    response = client.get("/api/v1/subscribers/1", headers=headers)
    assert response.status_code == 503
    assert error_of(response)["code"] == "unavailable"
    store.close()


def test_authenticate_guards_any_endpoint(api: Api) -> None:
    """What /admin/report (or any other page behind a key) calls: JSON 401 and 403 from the
    app's handler, the key when it has the scope."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from newsletter.web.api.auth import authenticate

    async def report(request: Request) -> PlainTextResponse:
        key = await authenticate(request, "stats:read")
        return PlainTextResponse(f"hello {key.name}")

    # before the archive's /{newsletter}/{date}, which would take the path otherwise
    api.client.app.router.routes.insert(0, Route("/admin/test-report", report))  # type: ignore[attr-defined]
    assert api.client.get("/admin/test-report").status_code == 401
    other = api.call("GET", "/admin/test-report", api.key("crm", "subscribers:read"))
    assert other.status_code == 403 and error_of(other)["code"] == "forbidden"
    allowed = api.call("GET", "/admin/test-report", api.key("board", "stats:read"))
    assert allowed.status_code == 200 and allowed.text == "hello board"
