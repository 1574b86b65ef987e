"""`newsletter report` from a history with known answers: rates against delivered, machine
opens apart, unsubscribes by route, list growth from the consent history, readers two
newsletters share, and the CSV and JSON outputs."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.reports.overview import build_report
from newsletter.store import Store


def test_rates_are_against_delivered_and_machine_opens_apart(history: Store) -> None:
    report = build_report(history, None, since=dt.date(2025, 5, 5), until=dt.date(2025, 5, 18))
    first = next(r for r in report.rows if r.period == "daily/2025-05-12")
    assert (first.recipients, first.sent, first.delivered) == (5, 5, 4)
    assert (first.opened, first.machine_opened, first.clickers, first.clicks) == (2, 1, 2, 3)
    assert (first.hard_bounces, first.soft_bounces, first.complaints) == (1, 0, 1)
    assert first.delivery_rate == 4 / 5
    assert first.open_rate == 2 / 4  # against delivered, not sent; the machine open apart
    assert first.click_rate == 2 / 4
    assert first.click_to_open_rate == 1.0
    # c left on the preferences page and d through the API after this issue; e complained
    assert first.unsubscribes == {"page": 1, "api": 1, "complaint": 1}
    assert [r.period for r in report.rows] == [
        "daily/2025-05-12",
        "green/2025-05-14",
        "daily/2025-05-15",
    ]


def test_list_growth_from_the_consent_history(history: Store) -> None:
    report = build_report(
        history,
        None,
        newsletter="daily",
        since=dt.date(2025, 5, 5),
        until=dt.date(2025, 5, 18),
        by="week",
    )
    weeks = [
        (h.period, h.subscribed_start, h.joined, h.left, h.subscribed_end) for h in report.health
    ]
    assert weeks == [
        ("2025-W19", 4, {"sign-up form": 1, "api": 1}, {"one-click": 1}, 5),
        ("2025-W20", 5, {}, {"bounce": 1, "complaint": 1, "page": 1, "api": 1}, 1),
    ]
    assert report.health[0].churn_rate == 1 / 4
    assert report.health[1].net == -4
    assert [(r.period, r.newsletter, r.issues, r.delivered) for r in report.rows] == [
        ("2025-W20", "daily", 2, 5)
    ]


def test_readers_in_common(history: Store) -> None:
    report = build_report(history, None, since=dt.date(2025, 5, 5), until=dt.date(2025, 5, 18))
    overlap = {(o.newsletter, o.other): o for o in report.overlap}
    green = overlap[("green", "daily")]
    # readers: green's a (opened) also read the daily; d's machine open made no reader
    assert (green.readers, green.also_read_other) == (1, 1)
    # receiving now: green a and c; the daily a only (c, d left; e, f suppressed)
    assert (green.subscribers, green.also_subscribed_other) == (2, 1)
    assert overlap[("daily", "green")].readers == 2


def test_csv_and_json(
    history: Store, workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    out = workspace / "rows.csv"
    args = ["-w", str(workspace), "report", "--since", "2025-05-05", "--until", "2025-05-18"]
    result = CliRunner().invoke(cli, [*args, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote rows.csv" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["period"] for r in rows] == [
        "daily/2025-05-12",
        "green/2025-05-14",
        "daily/2025-05-15",
    ]
    first = rows[0]
    assert (first["sent"], first["delivered"], first["opened"], first["machine_opened"]) == (
        "5",
        "4",
        "2",
        "1",
    )
    assert (first["open_rate"], first["click_to_open_rate"]) == ("0.5000", "1.0000")
    assert (
        first["unsubscribed_page"],
        first["unsubscribed_api"],
        first["unsubscribed_complaint"],
    ) == ("1", "1", "1")

    as_json = CliRunner().invoke(cli, [*args, "--json", "--by", "month"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert set(data) >= {"rows", "health", "top_stories", "sections", "tags", "authors", "overlap"}
    assert [(r["period"], r["newsletter"], r["sent"]) for r in data["rows"]] == [
        ("2025-05", "daily", 6),
        ("2025-05", "green", 2),
    ]
    daily = [h for h in data["health"] if h["newsletter"] == "daily"]
    assert [(h["period"], h["subscribed_start"], h["subscribed_end"]) for h in daily] == [
        ("2025-05", 4, 1)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "lately"],
            "Error: --since 'lately': expected a number of days like 90d or a date like 2025-05-01",
        ),
        (["--until", "2025-13-01"], "Error: --until '2025-13-01': expected a date like 2025-05-31"),
        (
            ["--since", "2025-06-01", "--until", "2025-05-01"],
            "Error: --since 2025-06-01 is after --until 2025-05-01",
        ),
        (
            ["--newsletter", "dialy"],
            "Error: --newsletter 'dialy': not in newsletter.toml (one of daily, weekly, green)",
        ),
    ],
    ids=["since", "until", "reversed", "newsletter"],
)
def test_bad_options_are_one_line(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    result = CliRunner().invoke(cli, ["-w", str(workspace), "report", *args])
    assert result.exit_code == 1
    assert result.output.strip() == message
