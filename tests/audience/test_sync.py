"""`newsletter subscribers sync`: a partial paywall export sets the tiers it lists and
demotes nobody silently; --dry-run prints and changes nothing; --demote-missing demotes;
a bad row is one line naming file:line, and nothing changes; the consent history says what
changed, like the API's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.audience.addresses import parse
from newsletter.audience.subscribers import add
from newsletter.cli import cli
from newsletter.store import open_store
from newsletter.store import people as q


@pytest.fixture
def lists(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ann (free), bob (premium), cy (premium), dee (free), all on daily."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    monkeypatch.chdir(workspace)
    store = open_store(db_url)
    for who, tier in (("ann", "free"), ("bob", "premium"), ("cy", "premium"), ("dee", "free")):
        add(store, f"{who}@example.com", "daily", tier=tier)
    store.close()
    return workspace


def tiers(db_url: str) -> dict[str, str]:
    store = open_store(db_url)
    with store.begin() as conn:
        found = {
            p.email: p.tier
            for p in q.by_keys(
                conn, [f"{w}@example.com" for w in ("ann", "bob", "cy", "dee")]
            ).values()
        }
    store.close()
    return found


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(
        cli, ["-w", str(root), "subscribers", "sync", *args], catch_exceptions=False
    )


PARTIAL = "Email,Plan\nANN@example.com,Digital Plus\nbob@example.com,lapsed\nnew@example.com,Digital Plus\n"


def test_a_partial_export_demotes_nobody_it_does_not_list(
    runner: CliRunner, lists: Path, db_url: str
) -> None:
    export = lists / "paywall.csv"
    export.write_text(PARTIAL)
    result = run(
        runner,
        lists,
        "paywall.csv",
        "--tier-column",
        "plan",
        "--premium-values",
        "digital plus,print",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "paywall.csv: 1 promoted to premium, 1 demoted to free, 0 unchanged, 1 not subscribers; "
        "1 premium not in the file, kept premium (--demote-missing demotes them)\n"
    )
    assert tiers(db_url) == {
        "ann@example.com": "premium",
        "bob@example.com": "free",
        "cy@example.com": "premium",  # not in the file: kept
        "dee@example.com": "free",
    }
    store = open_store(db_url)
    with store.begin() as conn:
        last = q.history(conn, parse("ann@example.com").hash)[-1]
    store.close()
    assert (last["action"], last["method"], last["detail"]) == (
        "tier",
        "sync",
        "free → premium (paywall.csv:2)",
    )


def test_dry_run_prints_the_changes_and_changes_nothing(
    runner: CliRunner, lists: Path, db_url: str
) -> None:
    (lists / "paywall.csv").write_text(PARTIAL)
    before = tiers(db_url)
    result = run(
        runner,
        lists,
        "paywall.csv",
        "--tier-column",
        "Plan",
        "--premium-values",
        "Digital Plus",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "paywall.csv:2: promote: ann@example.com\n"
        "paywall.csv:3: demote: bob@example.com\n"
        "paywall.csv:4: not a subscriber: new@example.com\n"
        "keep premium (not in the file): cy@example.com\n"
        "dry run, nothing changed: 1 would be promoted to premium, 1 would be demoted to free, "
        "0 unchanged, 1 not subscribers; 1 premium not in the file, kept premium "
        "(--demote-missing demotes them)\n"
    )
    assert tiers(db_url) == before


def test_demote_missing_demotes_premium_subscribers_not_in_the_file(
    runner: CliRunner, lists: Path, db_url: str
) -> None:
    (lists / "paywall.csv").write_text(PARTIAL)
    result = run(
        runner,
        lists,
        "paywall.csv",
        "--tier-column",
        "plan",
        "--premium-values",
        "digital plus",
        "--demote-missing",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "paywall.csv: 1 promoted to premium, 2 demoted to free, 0 unchanged, 1 not subscribers\n"
    )
    assert tiers(db_url)["cy@example.com"] == "free"
    store = open_store(db_url)
    with store.begin() as conn:
        last = q.history(conn, parse("cy@example.com").hash)[-1]
    store.close()
    assert last["detail"] == "premium → free (not in paywall.csv)"


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (
            "Email,Plan\nann@example.com,premium\nnot-an-address,premium\n",
            "plan",
            "Error: paywall.csv:3: 'not-an-address' is not a valid address: An email address must have an @-sign.\n",
        ),
        (
            "Email,Plan\nann@example.com,premium\n",
            "status",
            "Error: paywall.csv:1: no column 'status' in the header (its columns: Email, Plan)\n",
        ),
        (
            "Plan\npremium\n",
            "plan",
            "Error: paywall.csv:1: no email column in the header (expected one of 'email', 'email address', 'e-mail')\n",
        ),
        (
            "Email,Plan\nann@example.com,premium,extra\n",
            "plan",
            "Error: paywall.csv:2: the row has 3 fields, the header has 2\n",
        ),
        (
            "Email,Plan\nann@example.com,premium\nAnn@example.com,free\n",
            "plan",
            "Error: paywall.csv:3: Ann@example.com is listed twice with different plans (line 2 says premium, this one free)\n",
        ),
        (
            "",
            "plan",
            "Error: paywall.csv: the file is empty: the first row must name the columns\n",
        ),
    ],
    ids=["bad-address", "no-tier-column", "no-email-column", "ragged", "twice", "empty"],
)
def test_a_bad_file_is_one_line_and_nothing_changes(
    runner: CliRunner, lists: Path, db_url: str, content: str, column: str, message: str
) -> None:
    (lists / "paywall.csv").write_text(content)
    before = tiers(db_url)
    result = run(runner, lists, "paywall.csv", "--tier-column", column)
    assert result.exit_code == 1
    assert result.stderr == message
    assert tiers(db_url) == before
