"""Where things live: the database URL a workspace names."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.workspace import Workspace


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("sqlite:///newsletter.db", "sqlite:///{root}/newsletter.db"),
        ("sqlite:///data/nl.db?timeout=5", "sqlite:///{root}/data/nl.db?timeout=5"),
        ("sqlite:////var/lib/nl.db", "sqlite:////var/lib/nl.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///:memory:?cache=shared", "sqlite:///:memory:?cache=shared"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://u@db.example/nl", "postgresql+psycopg://u@db.example/nl"),
    ],
    ids=[
        "relative",
        "relative-with-options",
        "absolute",
        "memory",
        "memory-with-options",
        "default-memory",
        "postgresql",
    ],
)
def test_a_relative_sqlite_path_is_inside_the_workspace_and_nothing_else_moves(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, configured: str, expected: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", configured)
    assert Workspace(workspace).database_url == expected.format(root=workspace)
