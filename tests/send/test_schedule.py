"""Scheduled editions: `send --due` and `schedule` with the clock moved (NEWSLETTER_NOW, the
test-only clock; never a sleep): before, at and after an issue's time, past its window, a
draft, send_at, a week of configured newsletters; and `send_at` read from front matter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.send.schedule import scheduled_time

SCHEDULE = {
    "daily": 'send_time = "06:30"\nsend_days = "weekdays"\n',
    "weekly": 'send_time = "08:00"\nsend_days = ["sat"]\n',
    "green": 'send_time = "09:00"\nsend_days = ["Saturday"]\ntimezone = "Europe/London"\n'
    "send_window_hours = 3\n",
}
READERS = ["ann@example.com", "bo@example.com", "cy@example.com"]


def schedule_workspace(workspace: Path) -> None:
    """The sample's three newsletters on a schedule: the daily at 06:30 on weekdays, the
    weekly at 08:00 on Saturdays (Hong Kong), the green bulletin at 09:00 London time."""
    config = workspace / "newsletter.toml"
    text = config.read_text()
    for key, lines in SCHEDULE.items():
        marker = f"[newsletters.{key}]\n"
        text = text.replace(marker, marker + lines, 1)
    config.write_text(text)


def _run(runner: CliRunner, root: Path, now: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), *args], env={"NEWSLETTER_NOW": now})


def _subscribe(runner: CliRunner, root: Path, newsletter: str = "daily") -> None:
    for email in READERS:
        result = runner.invoke(
            cli, ["-w", str(root), "subscribers", "add", email, "--newsletter", newsletter]
        )
        assert result.exit_code == 0, result.output


def _outbox(root: Path, issue: str) -> list[Path]:
    return sorted((root / "outbox" / issue).glob("*.eml"))


def _set(root: Path, issue: str, old: str, new: str) -> None:
    path = root / "issues" / f"{issue}.md"
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.fixture
def scheduled(sending: Path, runner: CliRunner) -> Path:
    schedule_workspace(sending)
    _subscribe(runner, sending)
    return sending


def test_before_at_and_after_the_time(scheduled: Path, runner: CliRunner) -> None:
    before = _run(runner, scheduled, "2025-05-14T06:29:59+08:00", "send", "--due")
    assert before.exit_code == 0, before.output
    assert "nothing due at 2025-05-14 06:29 HKT: nothing sent" in before.output
    assert _outbox(scheduled, "daily/2025-05-14") == []

    at = _run(runner, scheduled, "2025-05-14T06:30:00+08:00", "send", "--due")
    assert at.exit_code == 0, at.output
    assert "daily/2025-05-14: sent: 3 sent, 0 failed" in at.output
    assert len(_outbox(scheduled, "daily/2025-05-14")) == 3

    after = _run(runner, scheduled, "2025-05-14T06:31:00+08:00", "send", "--due")
    assert after.exit_code == 0, after.output
    assert "daily/2025-05-14" not in after.output  # sent: nothing more to say or do
    assert "nothing due" in after.output
    assert len(_outbox(scheduled, "daily/2025-05-14")) == 3


def test_the_day_before_is_reported_missed_and_not_sent(scheduled: Path, runner: CliRunner) -> None:
    result = _run(runner, scheduled, "2025-05-14T06:00:00+08:00", "send", "--due")
    assert result.exit_code == 0, result.output
    assert (
        "daily/2025-05-13: missed: its send window closed at 2025-05-13 08:30 HKT "
        "(00:30 UTC); not sent" in result.output
    )
    assert _outbox(scheduled, "daily/2025-05-13") == []


def test_past_the_window_the_issue_is_missed(scheduled: Path, runner: CliRunner) -> None:
    result = _run(runner, scheduled, "2025-05-14T08:30:00+08:00", "send", "--due")
    assert result.exit_code == 0, result.output
    assert "daily/2025-05-14: missed: its send window closed at 2025-05-14 08:30 HKT" in (
        result.output
    )
    assert _outbox(scheduled, "daily/2025-05-14") == []
    # a person may still send it by hand
    late = runner.invoke(cli, ["-w", str(scheduled), "send", "daily/2025-05-14", "--late"])
    assert late.exit_code == 0, late.output


def test_a_draft_is_reported_never_sent(scheduled: Path, runner: CliRunner) -> None:
    _set(scheduled, "daily/2025-05-14", "status: ready", "status: draft")
    result = _run(runner, scheduled, "2025-05-14T06:30:00+08:00", "send", "--due")
    assert result.exit_code == 0, result.output
    assert (
        "daily/2025-05-14: due but still a draft: set 'status: ready' to send it "
        "(scheduled 2025-05-14 06:30 HKT (22:30 UTC))" in result.output
    )
    assert _outbox(scheduled, "daily/2025-05-14") == []


def test_send_at_in_front_matter_moves_the_issue(scheduled: Path, runner: CliRunner) -> None:
    _set(
        scheduled,
        "daily/2025-05-14",
        "status: ready",
        "status: ready\nsend_at: 2025-05-14T11:15:00+08:00",
    )
    usual = _run(runner, scheduled, "2025-05-14T06:30:00+08:00", "send", "--due")
    assert "daily/2025-05-14" not in usual.output
    assert _outbox(scheduled, "daily/2025-05-14") == []
    moved = _run(runner, scheduled, "2025-05-14T11:15:00+08:00", "send", "--due")
    assert "daily/2025-05-14: sent: 3 sent" in moved.output
    assert len(_outbox(scheduled, "daily/2025-05-14")) == 3


def test_weekend_and_timezones(scheduled: Path, runner: CliRunner) -> None:
    """The weekly goes at 08:00 Hong Kong time, the green bulletin at 09:00 London time
    (16:00 in Hong Kong) on Saturday; no daily on a Saturday."""
    _subscribe(runner, scheduled, "green")
    early = _run(runner, scheduled, "2025-05-17T08:00:00Z", "send", "--due")  # 09:00 in London
    assert "green/2025-05-17: sent: 3 sent" in early.output, early.output
    assert "daily/2025-05-17" not in early.output
    assert "weekly/2025-05-17: missed" in early.output  # 16:00 in Hong Kong: its window closed


def test_schedule_lists_a_week(scheduled: Path, runner: CliRunner) -> None:
    _set(scheduled, "daily/2025-05-13", "status: ready", "status: draft")
    sent = _run(runner, scheduled, "2025-05-12T06:30:00+08:00", "send", "--due")
    assert "daily/2025-05-12: sent" in sent.output
    result = _run(runner, scheduled, "2025-05-12T07:00:00+08:00", "schedule", "--days", "7")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        ["daily", "2025-05-12", "Mon", "06:30", "HKT", "22:30", "UTC", "sent"],
        ["daily", "2025-05-13", "Tue", "06:30", "HKT", "22:30", "UTC", "draft"],
        ["daily", "2025-05-14", "Wed", "06:30", "HKT", "22:30", "UTC", "ready"],
        ["daily", "2025-05-15", "Thu", "06:30", "HKT", "22:30", "UTC", "ready"],
        ["daily", "2025-05-16", "Fri", "06:30", "HKT", "22:30", "UTC", "ready"],
        ["weekly", "2025-05-17", "Sat", "08:00", "HKT", "00:00", "UTC", "ready"],
        ["green", "2025-05-17", "Sat", "16:00", "HKT", "08:00", "UTC", "ready"],  # 09:00 BST
        ["daily", "2025-05-19", "Mon", "06:30", "HKT", "22:30", "UTC", "no", "issue"],
    ]
    assert (
        "not ready: daily/2025-05-13 goes out at 2025-05-13 06:30 HKT (22:30 UTC) but is "
        "still draft" in result.stderr
    )
    missed = _run(runner, scheduled, "2025-05-13T09:00:00+08:00", "schedule", "--days", "0")
    assert missed.stdout.splitlines()[-1].split()[-1] == "missed"


def test_send_at_is_read_from_front_matter(ws) -> None:  # type: ignore[no-untyped-def]
    from newsletter.build.issuefile import load_issue

    path = ws.issues_dir / "daily" / "2025-05-14.md"
    path.write_text(
        path.read_text().replace(
            "status: ready", "status: ready\nsend_at: 2025-05-14T07:00:00+08:00", 1
        )
    )
    issue, problems = load_issue(path, ws.config)
    assert issue is not None, problems.sorted()
    assert issue.send_at == dt.datetime(2025, 5, 14, 7, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_scheduled_time_rules(workspace: Path) -> None:
    schedule_workspace(workspace)
    config = load_config(workspace / "newsletter.toml")
    assert scheduled_time(config, "daily", dt.date(2025, 5, 17)) is None  # a Saturday
    at = scheduled_time(config, "daily", dt.date(2025, 5, 16))
    assert at is not None and at.isoformat() == "2025-05-16T06:30:00+08:00"
    naive = scheduled_time(config, "daily", dt.date(2025, 5, 17), dt.datetime(2025, 5, 18, 7))
    assert naive is not None and naive.isoformat() == "2025-05-18T07:00:00+08:00"


def test_bad_schedule_settings_name_the_key(workspace: Path, runner: CliRunner) -> None:
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text().replace(
            "[newsletters.daily]\n",
            '[newsletters.daily]\nsend_time = "6.30am"\nsend_days = ["mon", "funday"]\n',
        )
    )
    result = runner.invoke(cli, ["-w", str(workspace), "schedule"])
    assert result.exit_code == 1
    assert (
        "newsletters.daily.send_time" in result.output
        and "'6.30am' is not a time of day" in result.output
    )
    assert "newsletters.daily.send_days" in result.output


def test_due_through_a_real_backend_needs_yes(scheduled: Path, runner: CliRunner) -> None:
    result = _run(
        runner, scheduled, "2025-05-14T06:30:00+08:00", "send", "--due", "--backend", "smtp"
    )
    assert result.exit_code == 1
    assert result.output == "Error: send --due through smtp runs unattended: add --yes\n"


def test_due_takes_no_issue(scheduled: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["-w", str(scheduled), "send", "daily/2025-05-14", "--due"])
    assert result.exit_code == 1 and "--due sends the scheduled issues" in result.output
    bare = runner.invoke(cli, ["-w", str(scheduled), "send"])
    assert bare.exit_code == 1 and "name the ISSUE to send" in bare.output


def test_sendgrid_schedule_ahead_hands_over_with_send_at(
    scheduled: Path, runner: CliRunner, fake_sendgrid
) -> None:  # type: ignore[no-untyped-def]
    config = scheduled / "newsletter.toml"
    config.write_text(config.read_text() + "\n[sendgrid]\nschedule_ahead = 12\nretry_delay = 0\n")
    due = ("send", "--due", "--backend", "sendgrid", "--yes")
    too_early = _run(runner, scheduled, "2025-05-13T18:00:00+08:00", *due)  # 12.5 h before
    assert "daily/2025-05-14" not in too_early.output
    assert fake_sendgrid.requests == []

    ahead = _run(runner, scheduled, "2025-05-13T19:00:00+08:00", *due)  # 11.5 h before
    assert ahead.exit_code == 0, ahead.output
    assert (
        "daily/2025-05-14: handed to SendGrid to go out at 2025-05-14 06:30 HKT (22:30 UTC): "
        "3 sent" in ahead.output
    )
    six_thirty = int(dt.datetime(2025, 5, 13, 22, 30, tzinfo=dt.UTC).timestamp())
    assert [body["send_at"] for body in fake_sendgrid.requests] == [six_thirty]
    assert sorted(fake_sendgrid.recipients()) == READERS

    listed = _run(runner, scheduled, "2025-05-13T19:01:00+08:00", "schedule", "--days", "1")
    assert "daily        2025-05-14  Wed 06:30 HKT  22:30 UTC  scheduled" in listed.output
    stats = runner.invoke(cli, ["-w", str(scheduled), "stats", "daily/2025-05-14"])
    assert "Scheduled: handed over ahead, to go out at 2025-05-13T22:30:00+00:00" in stats.output
    at_time = _run(runner, scheduled, "2025-05-14T06:30:00+08:00", *due)
    assert "daily/2025-05-14" not in at_time.output  # handed over once, not again
    assert len(fake_sendgrid.requests) == 1
    later = _run(runner, scheduled, "2025-05-14T07:00:00+08:00", "schedule", "--days", "0")
    assert "daily        2025-05-14  Wed 06:30 HKT  22:30 UTC  sent" in later.output


def test_without_schedule_ahead_sendgrid_waits_for_the_time(
    scheduled: Path, runner: CliRunner, fake_sendgrid
) -> None:  # type: ignore[no-untyped-def]
    due = ("send", "--due", "--backend", "sendgrid", "--yes")
    _run(runner, scheduled, "2025-05-13T19:00:00+08:00", *due)
    assert fake_sendgrid.requests == []
    sent = _run(runner, scheduled, "2025-05-14T06:30:00+08:00", *due)
    assert "daily/2025-05-14: sent: 3 sent" in sent.output, sent.output
    assert [body.get("send_at") for body in fake_sendgrid.requests] == [None]
