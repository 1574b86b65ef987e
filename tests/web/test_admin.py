"""`/admin/report`: the HTML report behind a key, refused (401, JSON) without one or with a
wrong one, never cached; nobody gets it when no key is configured."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

KEY = "admin-key-" + "k" * 32
URL = "/admin/report?since=2025-05-01&until=2025-05-31&newsletter=daily"


@pytest.fixture
def admin(service: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("NEWSLETTER_ADMIN_KEY", KEY)
    return service


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "longer", "not-bearer", "empty"],
)
def test_refused_without_the_key(admin: TestClient, headers: dict[str, str]) -> None:
    answer = admin.get(URL, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": "a valid key is required (Authorization: Bearer …)"}
    assert "no-store" in answer.headers["cache-control"]
    assert KEY not in answer.text


def test_nobody_gets_it_when_no_key_is_configured(
    service: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_ADMIN_KEY", raising=False)
    assert service.get(URL, headers={"Authorization": "Bearer "}).status_code == 401
    assert service.get(URL, headers={"Authorization": "Bearer None"}).status_code == 401


def test_the_report_with_the_key(admin: TestClient) -> None:
    answer = admin.get(URL, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store, private"
    assert answer.headers["vary"] == "Authorization"
    assert "<h1>The Harbour Ledger: what readers read</h1>" in answer.text
    assert "daily, 2025-05-01 to 2025-05-31, by issue" in answer.text


def test_bad_parameters_are_400_json(admin: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    answer = admin.get("/admin/report?since=lately", headers=auth)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "since 'lately': expected a number of days like 90d or a date like 2025-05-01"
    }
    assert admin.get("/admin/report?by=year", headers=auth).status_code == 400
