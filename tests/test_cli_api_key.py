"""`newsletter api-key …` through CliRunner on a real workspace and database: a key printed
once and stored only as its hash, a list that never shows one, a revoke that a running
service obeys at its next request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from newsletter.audience import apikeys
from newsletter.cli import cli
from newsletter.store import open_store


@pytest.fixture
def ws_db(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    return workspace


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), "api-key", *args], catch_exceptions=False)


def test_create_prints_the_key_once_and_stores_only_its_hash(
    runner: CliRunner, ws_db: Path, db_url: str
) -> None:
    made = run(
        runner,
        ws_db,
        "create",
        "paywall",
        "--scope",
        "subscribers:write",
        "--scope",
        "subscribers:read",
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert re.fullmatch(r"nlk_[A-Za-z0-9_-]{43}", key)  # 32 random bytes, URL-safe base64
    assert made.stderr == (
        "API key paywall (subscribers:read subscribers:write): copy it now, it is never shown again\n"
    )
    store = open_store(db_url)
    with store.begin() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    assert [r["key_hash"] for r in rows] == [apikeys.digest(key)]
    assert key not in repr(rows)
    store.close()

    listed = run(runner, ws_db, "list")
    assert key not in listed.stdout and key[4:12] not in listed.stdout
    assert "paywall" in listed.stdout and "never" in listed.stdout
    assert "subscribers:read subscribers:write" in listed.stdout
    assert key[:8] + "…" in listed.stdout  # the prefix tells keys apart


def test_revoke_and_the_errors(runner: CliRunner, ws_db: Path, db_url: str) -> None:
    key = run(runner, ws_db, "create", "crm", "--scope", "subscribers:read").stdout.strip()
    assert run(runner, ws_db, "revoke", "crm").stdout == "API key crm revoked\n"
    assert "(revoked)" in run(runner, ws_db, "list").stdout
    store = open_store(db_url)
    import datetime as dt

    assert apikeys.lookup(store, key, now=dt.datetime.now(dt.UTC)) is None
    store.close()

    cases = [
        (("revoke", "nobody"), "Error: no key named nobody\n"),
        (
            ("create", "crm", "--scope", "stats:read"),
            "Error: there is already a key named crm (names are never reused)\n",
        ),
        (
            ("create", "x", "--scope", "subscribers:everything"),
            "Error: unknown scope subscribers:everything: the scopes are subscribers:read, "
            "subscribers:write, subscribers:confirm, stats:read\n",
        ),
        (
            ("create", "Bad Name", "--scope", "stats:read"),
            "Error: 'Bad Name' is not a key name: 1 to 28 lowercase letters, digits, '.', '_' or '-'\n",
        ),
    ]
    for args, message in cases:
        result = run(runner, ws_db, *args)
        assert result.exit_code == 1
        assert result.stderr == message
