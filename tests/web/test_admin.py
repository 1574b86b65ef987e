"""`/admin/report`: the HTML report behind an API key with the `stats:read` scope: refused
(JSON 401) without a key or with an unknown or revoked one, (JSON 403) with a key lacking the
scope; never cached."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.testclient import TestClient

from newsletter.audience import apikeys

URL = "/admin/report?since=2025-05-01&until=2025-05-31&newsletter=daily"


def make_key(service: TestClient, name: str, *scopes: str) -> str:
    _, key = apikeys.create(service.store, name, list(scopes), now=dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    return key


@pytest.fixture
def key(service: TestClient) -> str:
    return make_key(service, "board", "stats:read")


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nlk_wrong", "Basic {key}", "Bearer", "Bearer {key}x"],
    ids=["none", "unknown", "not-bearer", "empty", "longer"],
)
def test_refused_without_a_valid_key(service: TestClient, key: str, header: str | None) -> None:
    headers = {"Authorization": header.format(key=key)} if header else {}
    answer = service.get(URL, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == "unauthorized"
    assert "no-store" in answer.headers["cache-control"]
    assert key not in answer.text


def test_a_key_without_the_scope_is_403(service: TestClient) -> None:
    crm = make_key(service, "crm", "subscribers:read", "subscribers:write")
    answer = service.get(URL, headers={"Authorization": f"Bearer {crm}"})
    assert answer.status_code == 403
    assert answer.json()["error"] == {
        "code": "forbidden",
        "message": "this API key does not have the scope stats:read",
    }
    assert "no-store" in answer.headers["cache-control"]


def test_a_revoked_key_is_refused(service: TestClient, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    assert service.get(URL, headers=auth).status_code == 200
    apikeys.revoke(service.store, "board", now=dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    assert service.get(URL, headers=auth).status_code == 401


def test_the_report_with_the_key(service: TestClient, key: str) -> None:
    answer = service.get(URL, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store, private"
    assert answer.headers["vary"] == "Authorization"
    assert "<h1>The Harbour Ledger: what readers read</h1>" in answer.text
    assert "daily, 2025-05-01 to 2025-05-31, by issue" in answer.text


def test_bad_parameters_are_400_json(service: TestClient, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    answer = service.get("/admin/report?since=lately", headers=auth)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "since 'lately': expected a number of days like 90d or a date like 2025-05-01"
    }
    assert service.get("/admin/report?by=year", headers=auth).status_code == 400
