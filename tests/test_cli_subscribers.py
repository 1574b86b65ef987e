"""`newsletter subscribers …` through CliRunner on a real workspace and database."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli


@pytest.fixture
def ws_db(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    return workspace


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), "subscribers", *args], catch_exceptions=False)


def test_import_list_stats_and_export(runner: CliRunner, ws_db: Path) -> None:
    csv_file = ws_db / "mailchimp.csv"
    csv_file.write_text(
        "Email Address,First Name,Last Name\njane@example.com,Jane,Doe\nnot-an-email,X,Y\nbob@example.org,Bob,\n"
    )
    result = run(
        runner, ws_db, "import", str(csv_file), "--newsletter", "daily", "--tier", "premium"
    )
    assert result.exit_code == 3  # saved, with a rejected row
    assert result.stdout == "2 added, 0 updated, 0 unchanged, 0 skipped, 1 rejected, 0 suppressed\n"
    assert (
        result.stderr
        == "mailchimp.csv:3: rejected not-an-email: An email address must have an @-sign.\n"
    )

    listed = json.loads(run(runner, ws_db, "list", "--json").stdout)
    assert listed == [
        {
            "email": "bob@example.org",
            "name": "Bob",
            "tier": "premium",
            "suppressed": None,
            "newsletters": {"daily": "subscribed"},
        },
        {
            "email": "jane@example.com",
            "name": "Jane Doe",
            "tier": "premium",
            "suppressed": None,
            "newsletters": {"daily": "subscribed"},
        },
    ]
    assert (
        run(runner, ws_db, "remove", "bob@example.org").stdout
        == "bob@example.org: unsubscribed from daily\n"
    )
    stats = run(runner, ws_db, "stats")
    assert stats.stdout.splitlines() == [
        "newsletter      tier        subscribed   pending  unsubscribed  suppressed",
        "daily           premium              1         0             1           0",
    ]
    out = ws_db / "export.csv"
    exported = run(runner, ws_db, "export", str(out))
    assert exported.stdout == "2 row(s) written to export.csv\n"
    assert (
        out.read_text().splitlines()[0]
        == "email,name,tier,newsletter,status,suppressed,source,created_at"
    )


def test_add_and_forget(runner: CliRunner, ws_db: Path) -> None:
    assert run(
        runner, ws_db, "add", "zoe@example.com", "--newsletter", "green", "--name", "Zoë"
    ).stdout == ("zoe@example.com: added (green)\n")
    forgotten = run(runner, ws_db, "forget", "zoe@example.com")
    assert (
        forgotten.stdout
        == "zoe@example.com: personal data deleted; the address stays on the suppression list\n"
    )
    again = run(runner, ws_db, "add", "zoe@example.com", "--newsletter", "green")
    assert again.exit_code == 1
    assert again.stderr == "Error: zoe@example.com is on the suppression list (erased): not added\n"


def test_bad_input_is_one_line_and_changes_nothing(runner: CliRunner, ws_db: Path) -> None:
    unknown = run(runner, ws_db, "add", "a@example.com", "--newsletter", "monthly")
    assert unknown.exit_code == 1
    assert (
        unknown.stderr
        == "Error: no newsletter 'monthly' in newsletter.toml (configured: daily, green, weekly)\n"
    )
    junk = ws_db / "junk.csv"
    junk.write_bytes(b"email\nok@example.com\n\x89PNG\r\n\x1a\n\xff\xd8\n")
    result = run(runner, ws_db, "import", str(junk), "--newsletter", "daily")
    assert result.exit_code == 1
    assert result.stderr == f"Error: {junk}:3: not UTF-8 text (save the file as CSV UTF-8)\n"
    missing = run(runner, ws_db, "import", str(ws_db / "nope.csv"), "--newsletter", "daily")
    assert missing.exit_code == 1
    assert (
        missing.stderr == f"Error: {ws_db / 'nope.csv'}: cannot read: No such file or directory\n"
    )
    no_newsletter = ws_db / "plain.csv"
    no_newsletter.write_text("email\nok@example.com\n")
    result = run(runner, ws_db, "import", str(no_newsletter))
    assert result.exit_code == 1
    assert "which newsletter? Give --newsletter KEY" in result.stderr
    assert json.loads(run(runner, ws_db, "list", "--json").stdout) == []


def test_an_unreachable_database_is_one_line(
    runner: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "NEWSLETTER_DATABASE_URL", "postgresql+psycopg://news:hunter2@127.0.0.1:1/news"
    )
    result = run(runner, workspace, "stats")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: cannot open the database postgresql+psycopg://news:***@127.0.0.1:1/news: "
    )
    assert "hunter2" not in result.output and result.stderr.count("\n") == 1


def test_the_default_database_is_a_file_in_the_workspace(
    runner: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)
    assert run(runner, workspace, "add", "a@example.com", "--newsletter", "daily").exit_code == 0
    assert (workspace / "newsletter.db").is_file()


def test_a_csv_with_a_header_and_no_rows_exits_1(runner: CliRunner, ws_db: Path) -> None:
    empty = ws_db / "empty.csv"
    empty.write_text("email,name\n")
    result = run(runner, ws_db, "import", str(empty), "--newsletter", "daily")
    assert result.exit_code == 1
    assert (
        result.stderr == f"Error: {empty}: the file has a header and no rows: nothing to import\n"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@localhost:99999/db",
        "postgresql+psycopg://u@localhost:port/db",
        "sqlite:///x.db?timeout=abc",
    ],
    ids=["port-out-of-range", "port-not-a-number", "bad-option"],
)
def test_a_database_url_with_a_bad_port_is_one_line_naming_the_setting(
    runner: CliRunner, workspace: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    result = runner.invoke(cli, ["-w", str(workspace), "subscribers", "stats"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ")
    assert "NEWSLETTER_DATABASE_URL" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_forget_removes_their_outbox_files_and_no_one_elses(
    runner: CliRunner, sending: Path
) -> None:
    """#11 rule 19: the outbox is a delivery log; erasure leaves no copy of the address in it."""
    import datetime as dt

    from newsletter.audience.notices import Notice
    from newsletter.send.backends.outbox import OutboxBackend

    readers = sending / "readers.csv"
    readers.write_text(
        "email,name\nZoe.Kwan@example.com,Zoë\nann@example.com,Ann\nbob@example.com,Bob\n"
    )
    assert run(runner, sending, "import", str(readers), "--newsletter", "daily").exit_code == 0
    cli_run = functools.partial(runner.invoke, cli, catch_exceptions=False)
    sent = cli_run(["-w", str(sending), "send", "daily/2025-05-14", "--late"])
    assert sent.exit_code == 0, sent.output
    test = [
        "send",
        "daily/2025-05-14",
        "--test",
        "zoe.kwan@example.com",
        "--test",
        "ed@example.com",
    ]
    assert cli_run(["-w", str(sending), *test]).exit_code == 0
    notices = OutboxBackend(sending / "outbox" / "notices")
    for n, to in enumerate(["ZOE.KWAN@EXAMPLE.COM", "ann@example.com"]):
        at = dt.datetime(2026, 3, 2, 9, n, tzinfo=dt.UTC)
        notice = Notice(
            "confirm",
            to,
            "Confirm",
            "text",
            "<p>html</p>",
            "Brief",
            "b@example.org",
            None,
            f"<n{n}@example.org>",
            at,
        )
        assert notices.send_notice(notice).state == "sent"
    outbox = sending / "outbox"
    before = {p: p.read_bytes() for p in outbox.rglob("*.eml")}
    assert sum(b"zoe.kwan@example.com" in data.lower() for data in before.values()) == 3

    forgotten = run(runner, sending, "forget", "zoe.kwan@EXAMPLE.com")
    assert forgotten.stdout == (
        "zoe.kwan@EXAMPLE.com: personal data deleted and 3 outbox files; "
        "the address stays on the suppression list\n"
    )
    after = {p: p.read_bytes() for p in outbox.rglob("*") if p.is_file()}
    assert not [p for p, data in after.items() if b"zoe.kwan@example.com" in data.lower()]
    assert after == {p: data for p, data in before.items() if b"zoe.kwan@" not in data.lower()}
    assert len(after) == 4  # Ann's and Bob's issue, the editor's test, Ann's notice
    again = run(runner, sending, "forget", "Zoe.Kwan@example.com")
    assert again.stdout == (
        "Zoe.Kwan@example.com: no record held; the address stays on the suppression list\n"
    )
