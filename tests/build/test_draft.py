"""`newsletter draft`: an issue file drafted from the site's feed, read from disk or over
real HTTP on loopback; the file passes `newsletter check`; stories an earlier issue carried
are left out; an existing file is never overwritten; a failed fetch writes nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from newsletter.build.draft import html_to_markdown, normalise_url
from newsletter.build.issuefile import load_issue
from newsletter.cli import cli
from newsletter.config import load_config
from tests.build.conftest import FEEDS, FeedServer

FEED_SETTINGS = """
[newsletters.daily.feed]
url = "{url}"
paywalled_category = "premium"
paywalled_field = "ledger:premium"
"""


def _configure(workspace: Path, url: str) -> None:
    config = workspace / "newsletter.toml"
    text = config.read_text().replace(
        "[newsletters.weekly]", FEED_SETTINGS.format(url=url) + "\n[newsletters.weekly]"
    )
    config.write_text(text)


def _draft(runner: CliRunner, workspace: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(workspace), "draft", "daily", *args])


def test_draft_from_the_configured_feed_passes_check(
    workspace: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    _configure(workspace, f"{feed_server.url}/feeds/rss.xml")
    result = _draft(runner, workspace, "--date", "2025-05-20")
    assert result.exit_code == 0, result.output
    path = workspace / "issues" / "daily" / "2025-05-20.md"
    assert "created issues/daily/2025-05-20.md: 3 stories, 2 left out" in result.output
    assert "left out item 3 ('An item the CMS published without a link'): it has no link" in (
        result.output
    )
    assert (
        'left out item 4 ("China\'s exporters get more help to withstand the trade war"): '
        "already in daily/2025-05-14" in result.output
    )
    assert "took Port volumes rise for a third month (https://news.harbourledger.example/" in (
        result.output
    )

    checked = runner.invoke(cli, ["-w", str(workspace), "check", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "0 errors" in checked.output

    issue, problems = load_issue(path, load_config(workspace / "newsletter.toml"))
    assert issue is not None, problems
    assert issue.status == "draft"
    assert issue.subject == "Port volumes rise for a third month"  # the lead story's
    port, banks, solar = issue.articles  # newest first
    assert port.url == "https://news.harbourledger.example/2025-05-20/port-volumes?ref=home"
    assert port.paywalled and port.section == "Markets" and port.tags == ["markets", "shipping"]
    assert port.byline == "Jane Doe"
    assert port.image_alt == "Cranes over stacked containers at Kwai Chung"
    assert port.image_credit == "Photo: VCG"
    assert port.published is not None and port.published.isoformat() == "2025-05-20T06:10:00+08:00"
    assert port.summary.startswith(
        "Container volumes **rose** 5% in April, "
        "[the port said](https://news.harbourledger.example/markets/shipping)."
    )
    text = path.read_text()
    for gone in ("tracker", "color: red", "pixel.example", "ad frame", "iframe", "<"):
        assert gone not in port.summary, gone
    assert banks.paywalled  # the CMS's own field
    assert not solar.paywalled and solar.image_alt == "Solar tariffs: what changes"
    assert "# Left for the editor:" in text
    assert "utm_" not in text


def test_atom_feed_with_relative_links_resolved_against_the_item(
    workspace: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    result = _draft(
        runner, workspace, "--date", "2025-05-20", "--from", f"{feed_server.url}/feeds/atom.xml"
    )
    assert result.exit_code == 0, result.output
    issue, problems = load_issue(
        workspace / "issues/daily/2025-05-20.md", load_config(workspace / "newsletter.toml")
    )
    assert issue is not None, problems.sorted()
    [chips] = issue.articles
    assert chips.url == f"{feed_server.url}/2025-05-20/tech/penang-chips"
    assert f"]({feed_server.url}/2025-05-20/related/penang-2024)" in chips.summary


def test_atom_feed_from_a_file_skips_the_relative_link(workspace: Path, runner: CliRunner) -> None:
    result = _draft(runner, workspace, "--date", "2025-05-20", "--from", str(FEEDS / "atom.xml"))
    assert result.exit_code == 1
    assert "relative and the feed gives no base to resolve it" in result.output
    assert not (workspace / "issues/daily/2025-05-20.md").exists()


def test_json_feed_dry_run_prints_and_writes_nothing(
    workspace: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    _configure(workspace, f"{feed_server.url}/feeds/feed.json")
    result = _draft(runner, workspace, "--date", "2025-05-20", "--dry-run")
    assert result.exit_code == 0, result.output
    assert 'subject: "Property sales pick up in Kowloon"' in result.output
    assert "paywalled: true" in result.output
    assert 'url: "https://news.harbourledger.example/2025-05-20/property-sales"' in result.output
    assert "left out item 2 ('A JSON item without a URL'): it has no link" in result.output
    assert not (workspace / "issues/daily/2025-05-20.md").exists()


def test_never_overwrites_an_issue(workspace: Path, runner: CliRunner) -> None:
    path = workspace / "issues/daily/2025-05-14.md"
    before = path.read_bytes()
    result = _draft(runner, workspace, "--date", "2025-05-14", "--from", str(FEEDS / "rss.xml"))
    assert result.exit_code == 1
    assert result.output == (
        "Error: issues/daily/2025-05-14.md: already exists; not overwriting it\n"
    )
    assert path.read_bytes() == before


def test_a_second_draft_for_the_same_date_is_refused(workspace: Path, runner: CliRunner) -> None:
    args = ("--date", "2025-05-20", "--from", str(FEEDS / "rss.xml"))
    assert _draft(runner, workspace, *args).exit_code == 0
    path = workspace / "issues/daily/2025-05-20.md"
    first = path.read_bytes()
    again = _draft(runner, workspace, *args)
    assert again.exit_code == 1 and "already exists; not overwriting it" in again.output
    assert path.read_bytes() == first


def test_a_404_or_a_malformed_feed_writes_nothing(
    workspace: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    missing = _draft(runner, workspace, "--date", "2025-05-20", "--from", f"{feed_server.url}/x")
    assert missing.exit_code == 1
    assert missing.output == f"Error: {feed_server.url}/x: the feed answered HTTP 404 Not Found\n"
    broken = _draft(
        runner, workspace, "--date", "2025-05-20", "--from", str(FEEDS / "malformed.xml")
    )
    assert broken.exit_code == 1
    assert broken.output.startswith(f"Error: {FEEDS / 'malformed.xml'}: not a readable feed: ")
    assert "Traceback" not in broken.output
    assert not (workspace / "issues/daily/2025-05-20.md").exists()


def test_a_feed_that_never_answers_times_out(
    workspace: Path, runner: CliRunner, feed_server: FeedServer
) -> None:
    result = _draft(
        runner,
        workspace,
        "--date",
        "2025-05-20",
        "--from",
        f"{feed_server.url}/stall",
        "--timeout",
        "0.3",
    )
    assert result.exit_code == 1
    assert (
        result.output == f"Error: {feed_server.url}/stall: the feed did not answer within 0.3 s\n"
    )
    assert not (workspace / "issues/daily/2025-05-20.md").exists()


def test_since_and_limit(workspace: Path, runner: CliRunner) -> None:
    """The window and the limit each leave stories out, saying why."""
    rss = str(FEEDS / "rss.xml")
    old = _draft(runner, workspace, "--date", "2025-05-20", "--from", rss, "--since", "1")
    assert old.exit_code == 1  # every story is older than the last hour
    assert "nothing to draft" in old.output and "published before the window" in old.output
    assert not (workspace / "issues/daily/2025-05-20.md").exists()
    result = _draft(runner, workspace, "--date", "2025-05-20", "--from", rss, "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "1 stories, 4 left out" in result.output
    assert "over the limit of 1 stories" in result.output
    # the next day: what this one took was sent, the rest is older than its newest story
    nxt = _draft(runner, workspace, "--date", "2025-05-21", "--from", rss, "--limit", "5")
    assert nxt.exit_code == 1
    assert "(item 1 ('Port volumes rise for a third month'): already in daily/2025-05-20" in (
        nxt.output
    )


def test_an_item_without_a_title_is_left_out() -> None:
    from newsletter.build.draft import to_record
    from newsletter.build.feed import FeedItem
    from newsletter.config import FeedSettings

    item = FeedItem(0, None, "https://news.example/a", None, "<p>Text</p>")
    assert to_record(item, FeedSettings()) == "it has no title"
    assert item.label == "item 1"


def test_no_feed_configured(workspace: Path, runner: CliRunner) -> None:
    result = _draft(runner, workspace)
    assert result.exit_code == 1
    assert "no feed for 'daily': set url in [newsletters.daily.feed]" in result.output


def test_html_to_markdown_drops_what_is_not_text() -> None:
    html = (
        '<p>One <a href="b/c">link</a><img src="https://t.example/p.gif" width="1" height="1">'
        " and a tail.</p><script>x()</script><!-- a comment -->"
    )
    md = html_to_markdown(html, "https://news.example/a/story")
    assert md == "One [link](https://news.example/a/b/c) and a tail."


def test_normalise_url() -> None:
    assert normalise_url("HTTPS://News.Example/a/?utm_source=x&id=2#top", ["fbclid"]) == (
        "https://news.example/a?id=2"
    )


def test_dedupe_looks_back_dedupe_days(workspace: Path, runner: CliRunner) -> None:
    """An issue older than dedupe_days is not read: its story may come back."""
    args = ("--from", str(FEEDS / "rss.xml"), "--dry-run")
    near = _draft(runner, workspace, "--date", "2025-06-13", *args)  # 05-14 is 30 days before
    assert "already in daily/2025-05-14" in near.output
    far = _draft(runner, workspace, "--date", "2025-06-14", *args)  # 31 days
    assert "already in" not in far.output
    assert "took China's exporters get more help" in far.output
