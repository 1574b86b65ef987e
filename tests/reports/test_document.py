"""The HTML report opened in headless Chromium: its charts render (inline SVG, one group per
series), it asks the network for nothing, and axe-core finds no serious violation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from newsletter.reports.document import write_html
from newsletter.reports.overview import build_report
from newsletter.store import Store
from newsletter.workspace import Workspace
from tests.web.test_browser import serious_violations

SERIES = """() => Object.fromEntries([...document.querySelectorAll('figure svg')].map(svg => [
  svg.closest('figure').querySelector('figcaption').textContent,
  new Set([...svg.querySelectorAll('[id^="series-"]')].map(e => e.id.split('-')[1])).size,
]))"""


def test_the_html_report_in_chromium(history: Store, workspace: Path, browser) -> None:  # type: ignore[no-untyped-def]
    report = build_report(
        history, Workspace(workspace), since=dt.date(2025, 5, 5), until=dt.date(2025, 5, 18)
    )
    assert [(s.title, s.clickers) for s in report.top_stories][:2] == [
        ("Ninety-day tariff truce sends container bookings soaring", 2),
        ("Kowloon Land misses a coupon, putting HK$8 billion of bonds in play", 1),
    ]
    assert {g.name: g.clickers for g in report.sections if g.clickers} == {
        "Trade": 2,
        "Property": 1,
    }
    path = workspace / "report.html"
    write_html(report, path, "The Harbour Ledger")
    html = path.read_text()
    assert "<script" not in html and "http://" not in html.split("<svg", 1)[0]

    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    assert requests == [path.as_uri()]  # nothing else: no font, script, image or style
    series = page.evaluate(SERIES)
    assert series == {
        "daily: rates per issue (against delivered).": 3,
        "green: rates per issue (against delivered).": 3,
        "daily: joined and left per period, and the net change.": 3,
        "green: joined and left per period, and the net change.": 3,
        "Top stories: people who clicked.": 1,
        "Sections: click rate of their stories.": 1,
        "Tags: click rate of their stories.": 1,
    }
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)"
    )
    assert all(w > 300 for w in sizes)  # drawn, not empty boxes
    assert page.get_by_role("img", name="Line chart of daily's human open").count() == 1
    assert serious_violations(page) == []
    page.close()
