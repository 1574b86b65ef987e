"""The archive page and the Atom feeds."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from newsletter.build.pipeline import build
from newsletter.workspace import Workspace

ATOM = "{http://www.w3.org/2005/Atom}"


def test_the_archive_lists_every_issue_newest_first(ws: Workspace) -> None:
    assert build(ws).ok
    page = (ws.root / "build/index.html").read_text()
    links = [line.split('"')[1] for line in page.splitlines() if line.startswith("<h2><a href=")]
    assert links == [
        "weekly/2025-05-17/",
        "green/2025-05-17/",
        "daily/2025-05-16/",
        "daily/2025-05-15/",
        "daily/2025-05-14/",
        "daily/2025-05-13/",
        "daily/2025-05-12/",
    ]
    for link in links:
        assert (ws.root / "build" / link / "index.html").is_file()


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
