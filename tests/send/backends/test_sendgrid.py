"""The SendGrid backend against a local SendGrid-compatible server: batching, values,
each retry rule, and an API key that never shows."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from tests.conftest import SENDGRID_KEY
from tests.sendgrid_fake import FakeSendGrid

ISSUE = "daily/2025-05-14"


def setup_list(root: Path, count: int, premium_every: int = 3, settings: str = "") -> None:
    config = root / "newsletter.toml"
    config.write_text(
        config.read_text() + f"\n[sendgrid]\nretry_delay = 0.01\ntimeout = 1\n{settings}\n"
    )
    rows = "".join(
        f"r{i:05d}@example.com,Reader <{i}> & co,{'premium' if (i + 1) % premium_every == 0 else 'free'}\n"
        for i in range(count)
    )
    (root / "l.csv").write_text("email,name,tier\n" + rows)
    result = CliRunner().invoke(
        cli,
        ["-w", str(root), "subscribers", "import", str(root / "l.csv"), "--newsletter", "daily"],
    )
    assert result.exit_code == 0, result.output


def send(root: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = [
        "-w",
        str(root),
        "send",
        ISSUE,
        "--late",
        "--backend",
        "sendgrid",
        "--yes",
        "--json",
        *extra,
    ]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_batches_of_personalizations_share_one_body(
    sending: Path, fake_sendgrid: FakeSendGrid
) -> None:
    setup_list(sending, 2500, settings="batch_size = 1000")
    result = send(sending)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sent"] == 2500
    received = fake_sendgrid.recipients()
    assert sorted(received) == [f"r{i:05d}@example.com" for i in range(2500)]
    assert all(len(b["personalizations"]) <= 1000 for b in fake_sendgrid.requests)
    body = fake_sendgrid.requests[0]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["categories"] == ["newsletter:daily"]
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    person = body["personalizations"][0]
    assert set(person["custom_args"]) == {"nl_issue", "nl_subscriber"}
    assert "@" not in json.dumps(person["custom_args"])
    assert person["headers"]["List-Unsubscribe"].startswith(
        "<https://newsletters.harbourledger.example/unsubscribe/"
    )
    name = person["to"][0]["name"]
    assert person["substitutions"]["%%name.html%%"] == name.replace("&", "&amp;").replace(
        "<", "&lt;"
    ).replace(">", "&gt;")
    assert person["substitutions"]["%%name.text%%"] == name
    html = body["content"][1]["value"]
    assert "%%unsubscribe_url.html%%" in html and "%%unsubscribe_url%%" not in html
    assert "%%unsubscribe_url.text%%" in body["content"][0]["value"]


def test_a_429_waits_for_the_reset_and_a_5xx_is_retried(
    sending: Path, fake_sendgrid: FakeSendGrid
) -> None:
    setup_list(sending, 5, premium_every=100)
    fake_sendgrid.faults = [("rate-limit", 2), ("status", 503)]
    report = json.loads(send(sending).stdout)
    assert report["sent"] == 5 and fake_sendgrid.attempts == 3
    assert (
        fake_sendgrid.attempt_times[1] >= fake_sendgrid.resets[0] - 0.05
    )  # it waited for the reset


def test_a_5xx_that_persists_fails_the_batch(sending: Path, fake_sendgrid: FakeSendGrid) -> None:
    setup_list(sending, 3, premium_every=100, settings="retries = 2")
    fake_sendgrid.faults = [("status", 500)] * 5
    result = send(sending)
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"]) == (0, 3)
    assert report["failures"][0]["error"] == "SendGrid answered 500 3 times: fault 500"


@pytest.mark.parametrize("fault", [("sleep", 2.0), ("drop",)], ids=["timeout", "dropped"])
def test_no_answer_means_unknown_and_no_resend(
    sending: Path, fake_sendgrid: FakeSendGrid, fault: tuple
) -> None:  # type: ignore[type-arg]
    setup_list(sending, 4, premium_every=100)
    fake_sendgrid.faults = [fault]
    result = send(sending)
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["unknown"] == 4 and report["sent"] == 0
    again = CliRunner().invoke(
        cli, ["-w", str(sending), "send", ISSUE, "--late", "--backend", "sendgrid", "--yes"]
    )
    assert (
        again.stdout
        == f"{ISSUE} was sent already: 0 sent, 4 unknown (--resend-unknown to send them again); nothing to send\n"
    )
    resent = json.loads(send(sending, "--resend-unknown").stdout)
    assert resent["sent"] == 4


def test_a_refused_key_stops_the_send_and_never_shows(
    sending: Path,
    fake_sendgrid: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup_list(sending, 3, premium_every=100)
    wrong = "SG.wrong-key-abcdefghijklmnopqrstuvwxyz0123456789"
    monkeypatch.setenv("SENDGRID_API_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    result = send(sending)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: SendGrid refused the request (401): The provided authorization grant is invalid, expired, or revoked\n"
    )
    assert wrong not in result.output and wrong not in caplog.text
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_KEY)
    report = json.loads(send(sending).stdout)
    assert report["sent"] == 3  # nothing was lost: the refused batch went back to the queue
    assert SENDGRID_KEY not in caplog.text


def test_scheduling_is_sendgrid_only_and_within_72_hours(
    sending: Path, fake_sendgrid: FakeSendGrid
) -> None:
    setup_list(sending, 2, premium_every=100)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).replace(microsecond=0)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=80)
    runner = CliRunner()
    base = ["-w", str(sending), "send", ISSUE, "--late", "--yes"]
    outbox = runner.invoke(cli, [*base, "--at", soon.isoformat()])
    assert outbox.stderr == "Error: scheduled sending (--at) needs the sendgrid backend\n"
    far = runner.invoke(cli, [*base, "--backend", "sendgrid", "--at", later.isoformat()])
    assert far.exit_code == 1 and "is not within the next 72 hours" in far.stderr
    ok = runner.invoke(cli, [*base, "--backend", "sendgrid", "--at", soon.isoformat()])
    assert ok.exit_code == 0, ok.output
    assert fake_sendgrid.requests[0]["send_at"] == int(soon.timestamp())


def test_the_message_id_of_each_request_is_recorded(
    sending: Path, fake_sendgrid: FakeSendGrid, db_url: str
) -> None:
    setup_list(sending, 3, premium_every=100)
    assert json.loads(send(sending).stdout)["sent"] == 3
    from newsletter.store import journal, open_store

    store = open_store(db_url)
    with store.begin() as conn:
        rows = journal.rows(conn, ISSUE, ["sent"])
    store.close()
    assert {r["provider_id"] for r in rows} == {"fake-msg-1"}
