"""The archive page and the Atom feeds."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from newsletter.build.pipeline import build
from newsletter.workspace import Workspace

ATOM = "{http://www.w3.org/2005/Atom}"


def archive_links(ws: Workspace) -> list[str]:
    """The issues the built archive page lists, in its order; each must have its web page."""
    page = (ws.root / "build/index.html").read_text()
    links = [line.split('"')[1] for line in page.splitlines() if line.startswith("<h2><a href=")]
    missing = [link for link in links if not (ws.root / "build" / link / "index.html").is_file()]
    assert missing == [], "listed without a web version"
    return links


def test_the_archive_lists_every_issue_newest_first(ws: Workspace) -> None:
    assert build(ws).ok
    links = archive_links(ws)
    assert links == [
        "weekly/2025-05-17/",
        "green/2025-05-17/",
        "daily/2025-05-16/",
        "daily/2025-05-15/",
        "daily/2025-05-14/",
        "daily/2025-05-13/",
        "daily/2025-05-12/",
    ]


def test_each_newsletter_has_a_feed_with_teasers_only(ws: Workspace) -> None:
    assert build(ws).ok
    feed = ET.parse(ws.root / "build/daily/feed.xml").getroot()
    assert feed.find(f"{ATOM}title").text == "The Harbour Ledger: The Daily Brief"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}link").get("href") for e in entries][:2] == [
        "https://newsletters.harbourledger.example/daily/2025-05-16/",
        "https://newsletters.harbourledger.example/daily/2025-05-15/",
    ]
    assert len(entries) == 5
    content = entries[2].find(f"{ATOM}content").text  # 2025-05-14
    assert "Uncertainty over the outlook for exports" in content
    assert "Short-term export credit insurance, which covers" not in content
    assert "Yiwu now subsidises" not in content
    assert feed.find(f"{ATOM}updated").text == "2025-05-16T06:00:00+08:00"
    green = ET.parse(ws.root / "build/green/feed.xml").getroot()
    assert [e.find(f"{ATOM}title").text for e in green.findall(f"{ATOM}entry")] == [
        "Green Economy: carbon at 100 yuan, methanol ships and floating solar"
    ]


FEEDS = {
    "daily": "The day's business news from Hong Kong, China and the world, before the markets open.",
    "weekly": "The week's stories not to miss, picked from The Daily Brief.",
    "green": "Our weekly bulletin on the business of the energy transition.",
}


def test_feeds_parse_with_their_description_as_subtitle_and_the_web_versions_as_links(
    ws: Workspace,
) -> None:
    import feedparser

    assert build(ws).ok
    for key, subtitle in FEEDS.items():
        feed = feedparser.parse((ws.root / "build" / key / "feed.xml").read_bytes())
        assert not feed.bozo, (key, feed.get("bozo_exception"))
        assert feed.feed.subtitle == subtitle
        assert "You are receiving" not in feed.feed.subtitle  # the email footer's sentence
        dates = sorted(p.parent.name for p in (ws.root / "build" / key).glob("*/index.html"))
        assert [e.link for e in feed.entries] == [
            f"https://newsletters.harbourledger.example/{key}/{d}/" for d in reversed(dates)
        ]
        for entry in feed.entries:
            links = re.findall(r'href="(https://news\.[^"]+)"', entry.content[0].value)
            assert links and all("utm_medium=feed" in link for link in links)


def test_a_newsletter_without_a_description_has_its_title_as_subtitle(ws: Workspace) -> None:
    text = ws.config_path.read_text()
    ws.config_path.write_text(re.sub(r'\ndescription = "Our weekly[^\n]*', "", text))
    ws = Workspace(ws.root)
    assert build(ws).ok
    feed = ET.parse(ws.root / "build/green/feed.xml").getroot()
    assert feed.find(f"{ATOM}subtitle").text == "Green Economy"


def test_the_archive_names_the_feeds_then_subscribe_with_a_space(ws: Workspace) -> None:
    assert build(ws).ok
    page = (ws.root / "build/index.html").read_text()
    assert (
        '(<a href="weekly/feed.xml">feed</a>) · <a href="https://harbourledger.example/subscribe">Subscribe</a>'
        in page
    )


def test_building_one_issue_in_a_fresh_workspace_archives_every_ready_issue(
    ws: Workspace,
) -> None:
    draft = ws.root / "issues/daily/2025-05-13.md"
    draft.write_text(draft.read_text().replace("status: ready", "status: draft"))
    report = build(ws, [ws.root / "issues/daily/2025-05-14.md"])
    assert report.ok
    links = archive_links(ws)
    # every ready issue, built for the archive; the draft is not published
    assert links == [
        "weekly/2025-05-17/",
        "green/2025-05-17/",
        "daily/2025-05-16/",
        "daily/2025-05-15/",
        "daily/2025-05-14/",
        "daily/2025-05-12/",
    ]
    feed = ET.parse(ws.root / "build/weekly/feed.xml").getroot()
    assert feed.find(f"{ATOM}updated").text == "2025-05-17T06:00:00+08:00"
    assert len(feed.findall(f"{ATOM}entry")) == 1
    # a second build of the same issue has nothing left to do
    again = build(ws, [ws.root / "issues/daily/2025-05-14.md"])
    assert again.ok and again.built == [] and again.written == []


def test_sending_one_issue_in_a_fresh_workspace_archives_every_ready_issue(
    ws: Workspace,
) -> None:
    from newsletter.send.plan import _content

    _content(ws, ws.root / "issues/daily/2025-05-16.md")
    daily = ET.parse(ws.root / "build/daily/feed.xml").getroot()
    assert len(daily.findall(f"{ATOM}entry")) == 5
    assert (ws.root / "build/green/2025-05-17/index.html").is_file()


def test_an_issue_that_does_not_build_is_left_out_with_a_warning(ws: Workspace) -> None:
    broken = ws.root / "issues/weekly/2025-05-17.md"
    broken.write_text(broken.read_text().replace("subject:", "subjekt:", 1))
    report = build(ws, [ws.root / "issues/daily/2025-05-14.md"])
    assert report.ok
    assert [p.format() for p in report.problems.warnings] == [
        "issues/weekly/2025-05-17.md: warning: left out of the archive and feeds: it does not "
        "build (see `newsletter check`)"
    ]
    assert not (ws.root / "build/weekly/2025-05-17").exists()


def test_an_empty_feed_is_dated_by_the_newest_issue_never_1970(ws: Workspace) -> None:
    text = ws.config_path.read_text()
    ws.config_path.write_text(
        text + '\n[newsletters.markets]\ntitle = "Markets"\ncadence = "daily"\n'
        'from = "Markets <markets@harbourledger.example>"\n'
    )
    ws = Workspace(ws.root)
    assert build(ws, [ws.root / "issues/daily/2025-05-14.md"]).ok
    feed = ET.parse(ws.root / "build/markets/feed.xml").getroot()
    assert feed.find(f"{ATOM}updated").text == "2025-05-17T06:00:00+08:00"
    assert feed.findall(f"{ATOM}entry") == []


def test_with_no_issue_at_all_feeds_are_dated_by_source_date_epoch_or_the_config(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil

    shutil.rmtree(ws.root / "issues")
    (ws.root / "issues").mkdir()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1747353600")  # 2025-05-16T00:00:00Z
    assert build(ws).ok
    feed = ET.parse(ws.root / "build/daily/feed.xml").getroot()
    assert feed.find(f"{ATOM}updated").text == "2025-05-16T00:00:00+00:00"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    os.utime(ws.config_path, (1700000000, 1700000000))  # 2023-11-14T22:13:20Z
    assert build(ws).ok
    feed = ET.parse(ws.root / "build/daily/feed.xml").getroot()
    assert feed.find(f"{ATOM}updated").text == "2023-11-14T22:13:20+00:00"


def test_a_draft_is_built_but_not_published_in_the_archive_or_feed(ws: Workspace) -> None:
    draft = ws.root / "issues/daily/2025-05-13.md"
    draft.write_text(draft.read_text().replace("status: ready", "status: draft"))
    assert build(ws).ok
    assert (ws.root / "build/daily/2025-05-13/free.html").is_file()  # to preview and test-send
    assert 'href="daily/2025-05-13/"' not in (ws.root / "build/index.html").read_text()
    assert "2025-05-13" not in (ws.root / "build/daily/feed.xml").read_text()
