"""`newsletter send` to the outbox: every subscriber once, per tier; resume; the send window."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

ISSUE = "daily/2025-05-14"
PAYWALLED_PART = "Short-term export credit insurance, which covers payments due within a year"


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), *args], catch_exceptions=False)


def subscribe(runner: CliRunner, root: Path, rows: str, newsletter: str = "daily") -> None:
    path = root / "readers.csv"
    path.write_text("email,name,tier\n" + rows)
    result = run(runner, root, "subscribers", "import", str(path), "--newsletter", newsletter)
    assert result.exit_code == 0, result.output


def outbox(root: Path, issue: str = ISSUE) -> dict[str, email.message.EmailMessage]:
    folder = root / "outbox" / issue
    found = {}
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"].addresses[0].addr_spec)] = message
    return found


def body(message: email.message.EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def test_a_full_send_reaches_each_subscriber_once_with_their_tier(
    runner: CliRunner, sending: Path
) -> None:
    subscribe(
        runner, sending, "free@example.com,Fay Free,free\npaid@example.com,Pat Paid,premium\n"
    )
    subscribe(runner, sending, "weekly@example.com,Wes,free\n", newsletter="weekly")
    result = run(runner, sending, "send", ISSUE, "--late")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"{ISSUE} via outbox: 2 sent, 0 failed, 0 skipped, 0 already sent, 0 unknown in "
    )
    messages = outbox(sending)
    assert sorted(messages) == ["free@example.com", "paid@example.com"]
    free, paid = messages["free@example.com"], messages["paid@example.com"]
    assert PAYWALLED_PART in " ".join(body(paid, "html").split())
    assert PAYWALLED_PART not in " ".join(body(free, "html").split())
    assert PAYWALLED_PART in " ".join(body(paid, "plain").split())
    assert "This email was sent to free@example.com." in body(free, "plain")
    assert free["Subject"] == "Exporters get more help to weather the tariff war"
    assert free["From"] == "The Daily Brief <brief@harbourledger.example>"
    assert free["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert free["X-Newsletter-Issue"] == ISSUE
    assert [p.get_content_type() for p in free.iter_parts()] == ["text/plain", "text/html"]
    again = run(runner, sending, "send", ISSUE, "--late")
    assert again.exit_code == 0
    assert again.stdout == f"{ISSUE} was sent already: 2 sent; nothing to send\n"


def test_list_unsubscribe_is_literal_on_the_wire(runner: CliRunner, sending: Path) -> None:
    subscribe(runner, sending, "a@example.com,A,free\n")
    assert run(runner, sending, "send", ISSUE, "--late").exit_code == 0
    raw = next((sending / "outbox" / ISSUE).glob("*.eml")).read_bytes()
    header = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert header.startswith(
        b"List-Unsubscribe: <https://newsletters.harbourledger.example/unsubscribe/"
    )
    assert b">, <mailto:unsubscribe@harbourledger.example?subject=unsubscribe%20" in header
    assert header.endswith(b">") and b"=?" not in header
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_resume_after_a_limit_sends_the_rest_once(runner: CliRunner, sending: Path) -> None:
    subscribe(runner, sending, "".join(f"r{i}@example.com,R{i},free\n" for i in range(7)))
    first = run(runner, sending, "send", ISSUE, "--late", "--limit", "3", "--json")
    assert first.exit_code == 0
    import json

    assert json.loads(first.stdout)["sent"] == 3
    assert len(outbox(sending)) == 3
    run(runner, sending, "subscribers", "remove", "r5@example.com")
    second = json.loads(run(runner, sending, "send", ISSUE, "--late", "--json").stdout)
    assert (second["sent"], second["skipped"], second["already_sent"]) == (3, 1, 3)
    assert sorted(outbox(sending)) == sorted(f"r{i}@example.com" for i in range(7) if i != 5)


def test_only_a_ready_issue_goes_to_a_list_but_a_test_send_works_on_a_draft(
    runner: CliRunner, sending: Path
) -> None:
    subscribe(runner, sending, "a@example.com,A,free\n")
    path = sending / "issues" / f"{ISSUE}.md"
    path.write_text(path.read_text().replace("status: ready", "status: draft"))
    refused = run(runner, sending, "send", ISSUE, "--late")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: issues/{ISSUE}.md is a draft: set 'status: ready' to send it (--test works on drafts)\n"
    )
    test = run(
        runner, sending, "send", ISSUE, "--test", "editor@example.com", "--test-tier", "free"
    )
    assert test.exit_code == 0, test.output
    [message] = outbox(sending, ISSUE + "/test").values()
    assert message["Subject"] == "[TEST] Exporters get more help to weather the tariff war"
    assert outbox(sending) == {}  # the list got nothing, and nothing was recorded
    path.write_text(path.read_text().replace("status: draft", "status: ready"))
    assert run(runner, sending, "send", ISSUE, "--late").exit_code == 0
    assert list(outbox(sending)) == ["a@example.com"]


def test_a_stale_daily_is_refused_unless_late(runner: CliRunner, sending: Path) -> None:
    subscribe(runner, sending, "a@example.com,A,free\n")
    result = run(runner, sending, "send", ISSUE)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the send window of daily/2025-05-14 closed at 2025-05-15 00:00 HKT: a stale issue is not sent "
        "(use --late to send it anyway)\n"
    )
    assert outbox(sending) == {}


def test_without_a_secret_sending_says_how_to_make_one(
    runner: CliRunner, sending: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET")
    result = run(runner, sending, "send", ISSUE, "--late")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no secret to sign unsubscribe links with: set NEWSLETTER_SECRET, or run 'newsletter secret' "
        "to create .secrets in the workspace (keep it out of git)\n"
    )
    assert run(runner, sending, "secret").exit_code == 0
    assert (sending / ".secrets").stat().st_mode & 0o777 == 0o600
    assert run(runner, sending, "send", ISSUE, "--late").exit_code == 0


def test_a_dry_run_counts_per_tier_and_sends_nothing(runner: CliRunner, sending: Path) -> None:
    subscribe(
        runner, sending, "a@example.com,A,free\nb@example.com,B,premium\nc@example.com,C,premium\n"
    )
    result = run(runner, sending, "send", ISSUE, "--dry-run")
    assert result.exit_code == 0
    assert (
        result.stdout.splitlines()[0]
        == f"{ISSUE}: 3 recipient(s) (1 free, 2 premium); dry run: nothing sent"
    )
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in result.stdout
    assert outbox(sending) == {}
    assert run(runner, sending, "send", ISSUE, "--late").stdout.startswith(
        f"{ISSUE} via outbox: 3 sent"
    )


def test_a_real_backend_needs_confirmation(runner: CliRunner, sending: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import use_smtp

    use_smtp(sending, smtp_server.port)
    subscribe(runner, sending, "a@example.com,A,free\n")
    result = run(runner, sending, "send", ISSUE, "--late", "--backend", "smtp")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: sending to a real list needs confirmation: run on a terminal, or add --yes\n"
    )
    assert smtp_server.messages == []
    assert (
        run(runner, sending, "send", ISSUE, "--late", "--backend", "smtp", "--yes").exit_code == 0
    )
    assert smtp_server.received() == ["a@example.com"]
