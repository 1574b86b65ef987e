"""The web version ("view in browser") is a web page of its own: HTML5 with a <main>, the
description, canonical link and sharing cards; the free tier's content; links tagged
utm_medium=web; and nothing per-recipient, as it is public."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from newsletter.build.pipeline import check
from newsletter.workspace import Workspace
from tests.build.test_render import render

DAILY_URL = "https://newsletters.harbourledger.example/daily/2025-05-14/"


class Head(HTMLParser):
    """The <meta>, <link> and landmark elements of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "meta" and ("name" in a or "property" in a):
            self.meta[a.get("property") or a["name"]] = a.get("content", "")
        if tag == "link":
            self.links[a["rel"]] = a["href"]


def head(html: str) -> Head:
    parsed = Head()
    parsed.feed(html)
    return parsed


def test_the_web_version_is_a_web_page_with_sharing_cards(ws: Workspace) -> None:
    html = render(ws).files["index.html"]
    page = head(html)
    assert html.startswith('<!doctype html>\n<html lang="en">')
    assert page.tags.count("main") == 1
    assert (
        "<title>Exporters get more help to weather the tariff war · The Daily Brief</title>" in html
    )
    preheader = "Credit insurance cover is up 15.3%; Yiwu pays 80% of premiums"
    assert page.meta["description"] == preheader
    assert page.links["canonical"] == DAILY_URL
    assert page.meta["og:title"] == "Exporters get more help to weather the tariff war"
    assert page.meta["og:description"] == preheader
    assert page.meta["og:url"] == DAILY_URL
    assert page.meta["og:type"] == "article"
    # the first story's picture
    assert page.meta["og:image"] == (
        "https://news.harbourledger.example/img/2025/05/port-containers.jpg"
    )
    assert page.meta["twitter:card"] == "summary_large_image"
    assert page.meta["twitter:image"] == page.meta["og:image"]
    # the sample's header override, as in the email
    assert "Business news from the harbour to the world" in html
    # none of the email's markup
    for email_only in ("<!--[if", "xmlns:v", "<table", "mso-", 'width="600"'):
        assert email_only not in html, email_only


def test_without_a_picture_the_card_is_a_summary(ws: Workspace) -> None:
    path = ws.root / "issues/daily/2025-05-14.md"
    text = re.sub(r"\n    image(_alt|_credit)?: [^\n]*", "", path.read_text())
    path.write_text(text)
    page = head(render(Workspace(ws.root)).files["index.html"])
    assert "og:image" not in page.meta and "twitter:image" not in page.meta
    assert page.meta["twitter:card"] == "summary"


def test_the_web_version_is_the_free_tier(ws: Workspace) -> None:
    html = render(ws).files["index.html"]
    assert html.count("Subscribe to read the full story") == 3
    assert "China Export and Credit Insurance Corp." not in html  # a who's who, paywalled


def test_web_and_feed_links_carry_their_own_utm_medium(ws: Workspace) -> None:
    daily = render(ws)
    story = "https://news.harbourledger.example/2025-05-14/electric-ferries?utm_source=newsletter&amp;utm_medium={}&amp;utm_campaign=daily-2025-05-14"
    assert f'href="{story.format("web")}"' in daily.files["index.html"]
    assert "utm_medium=email" not in daily.files["index.html"]
    assert f'href="{story.format("feed")}"' in daily.feed_html
    assert "utm_medium=email" not in daily.feed_html
    assert f'href="{story.format("email")}"' in daily.files["free.html"]
    # configurable; empty: no UTM parameters at all there
    config = ws.config_path.read_text().replace(
        "[newsletters.green.utm]",
        '[newsletters.daily.utm]\nweb = "site"\nfeed = ""\n\n[newsletters.green.utm]',
    )
    ws.config_path.write_text(config)
    daily = render(Workspace(ws.root))
    assert f'href="{story.format("site")}"' in daily.files["index.html"]
    assert (
        'href="https://news.harbourledger.example/2025-05-14/electric-ferries"' in daily.feed_html
    )
    assert "utm_" not in daily.feed_html
    assert f'href="{story.format("email")}"' in daily.files["free.html"]


def test_the_web_version_cannot_hold_per_recipient_placeholders(ws: Workspace) -> None:
    override = ws.templates_dir / "web/issue.html.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    # the markers are not offered to the web template at all
    override.write_text(
        '{% extends "default/web/issue.html.j2" %}{% block footer %}{{ ph.email }}{{ super() }}{% endblock %}'
    )
    errors = [p.format() for p in check(ws, [ws.root / "issues/daily/2025-05-14.md"]).errors]
    assert errors and all("email" in e for e in errors), errors
    # and one written out by hand is found
    override.write_text(
        '{% extends "default/web/issue.html.j2" %}{% block footer %}<p>%%unsubscribe_url%%</p>{{ super() }}{% endblock %}'
    )
    errors = [p.format() for p in check(ws, [ws.root / "issues/daily/2025-05-14.md"]).errors]
    assert errors == [
        "issues/daily/2025-05-14.md: error: the web version holds a per-recipient placeholder "
        "(%%unsubscribe_url%%): it is public, so it has none"
    ]
