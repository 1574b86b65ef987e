"""The OpenAPI document is the contract: schemathesis (from PyPI) runs against the live
service (a real uvicorn on loopback, a key with every scope) and must find no 5xx, no
response that breaks the schema, no status code or content type the document does not
list, and no method answered that it does not name. Bounded (50 examples an operation, no
deadline) so that it stays well under two minutes on a loaded machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience import apikeys
from newsletter.audience.subscribers import add
from tests.conftest import WEB_SECRET

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
]


def schemathesis() -> str:
    found = Path(sys.executable).parent / "st"
    if found.is_file():
        return str(found)
    on_path = shutil.which("st")
    if on_path is None:
        reason = "schemathesis not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return on_path


@pytest.fixture
def live_api(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, live_server: Any):  # type: ignore[no-untyped-def]
    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    store = open_store(db_url)
    add(store, "jane.doe@example.com", "daily", name="Jane")
    _, key = apikeys.create(store, "contract", sorted(apikeys.SCOPES), now=dt.datetime.now(dt.UTC))
    server = live_server(create_app(Workspace(workspace), store))
    yield server, key
    store.close()


def test_the_openapi_document_is_3_1_and_names_every_endpoint(live_api: Any) -> None:
    import http.client

    server, _ = live_api
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/v1/openapi.json")
    response = conn.getresponse()
    document = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert document["openapi"] == "3.1.0"
    operations = {
        (m.upper(), p) for p, item in document["paths"].items() for m in item if m != "parameters"
    }
    assert operations == {
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/subscribers"),
        ("GET", "/api/v1/subscribers"),
        ("GET", "/api/v1/subscribers/{id}"),
        ("PATCH", "/api/v1/subscribers/{id}"),
        ("DELETE", "/api/v1/subscribers/{id}"),
        ("GET", "/api/v1/issues/{newsletter}/{date}/stats"),
    }
    assert document["components"]["schemas"]["Signup"]["properties"]["newsletters"]["items"] == {
        "enum": ["daily", "green", "weekly"]
    }


def test_schemathesis_finds_nothing_against_the_live_service(live_api: Any, tmp_path: Path) -> None:
    server, key = live_api
    command = [
        schemathesis(),
        "run",
        f"{server.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        "50",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=170, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "6 selected / 6 total" in output or "7 selected / 7 total" in output, output[-3000:]
