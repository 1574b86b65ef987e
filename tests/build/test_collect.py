"""Weekly and topic issues collect their stories from the dailies."""

from __future__ import annotations

import re

from newsletter.build.catalog import Catalog
from newsletter.build.issue import Issue
from newsletter.build.pipeline import check
from newsletter.workspace import Workspace


def collected(ws: Workspace, rel: str) -> Issue:
    catalog = Catalog(ws)
    issue, problems = catalog.load(ws.root / rel)
    assert issue is not None, [p.format() for p in problems]
    return catalog.complete(issue, problems)


def test_the_weekly_collects_the_must_reads_of_the_week_in_date_order(ws: Workspace) -> None:
    issue = collected(ws, "issues/weekly/2025-05-17.md")
    got = [(c.source_date.isoformat(), c.article.title[:30]) for c in issue.collected]
    assert got == [
        ("2025-05-12", "Ninety-day tariff truce sends "),
        ("2025-05-12", "Kowloon Land misses a coupon, "),
        ("2025-05-13", "Chipmakers race for land in Pe"),
        ("2025-05-13", "Guangdong carbon price breaks "),
        ("2025-05-14", "China's exporters get more hel"),
        ("2025-05-14", "Electric ferries will cross th"),
        ("2025-05-15", "Inside the Pearl River Delta's"),
        ("2025-05-15", "Fish farms move offshore as co"),
        ("2025-05-16", "Shipping line orders 12 methan"),
        ("2025-05-16", "A Peak mansion sells at a 30% "),
    ]
    assert all(c.article.must_read for c in issue.collected)


def test_the_topic_bulletin_collects_stories_by_tag(ws: Workspace) -> None:
    issue = collected(ws, "issues/green/2025-05-17.md")
    assert issue.collected
    assert all("environment" in c.article.tags for c in issue.collected)
    # counted independently: story lines tagged environment in the week's dailies
    tagged = sum(
        len(re.findall(r"^    tags: \[.*\benvironment\b", p.read_text(), re.M))
        for p in (ws.root / "issues/daily").glob("2025-05-1*.md")
    )
    assert tagged > 5 and len(issue.collected) == tagged
    dates = [c.source_date for c in issue.collected]
    assert dates == sorted(dates)


def test_listed_articles_come_first_and_a_url_appears_once(ws: Workspace) -> None:
    path = ws.root / "issues/weekly/2025-05-17.md"
    path.write_text(
        path.read_text().replace(
            'preheader: "Ten stories our editors think you should not miss"\n',
            'preheader: "Our picks"\narticles:\n'
            "  - title: Our own pick of the tariff truce\n"
            "    url: https://news.harbourledger.example/2025-05-12/tariff-truce-container-bookings\n"
            "    summary: Listed by the weekly itself.\n",
        )
    )
    issue = collected(ws, "issues/weekly/2025-05-17.md")
    titles = [a.title for a in issue.all_articles]
    assert titles[0] == "Our own pick of the tariff truce"
    assert len(titles) == 10
    urls = [a.url for a in issue.all_articles]
    assert len(urls) == len(set(urls))


def test_drafts_and_days_outside_the_window_are_not_collected(ws: Workspace) -> None:
    monday = ws.root / "issues/daily/2025-05-12.md"
    monday.write_text(monday.read_text().replace("status: ready", "status: draft"))
    later = ws.root / "issues/weekly/2025-05-24.md"
    later.write_text(
        (ws.root / "issues/weekly/2025-05-17.md").read_text().replace("2025-05-17", "2025-05-24")
    )
    first = collected(ws, "issues/weekly/2025-05-17.md")
    assert {c.source_date.isoformat() for c in first.collected} == {
        "2025-05-13",
        "2025-05-14",
        "2025-05-15",
        "2025-05-16",
    }
    assert collected(ws, "issues/weekly/2025-05-24.md").collected == ()


def test_a_collected_issue_that_collected_nothing_is_a_warning(ws: Workspace) -> None:
    later = ws.root / "issues/green/2025-06-30.md"
    later.write_text(
        (ws.root / "issues/green/2025-05-17.md").read_text().replace("2025-05-17", "2025-06-30")
    )
    problems = check(ws, [later])
    assert [p.format() for p in problems] == [
        "issues/green/2025-06-30.md: warning: collected nothing: no ready 'daily' issue in the 7 days "
        "to 2025-06-30 has a matching story"
    ]
