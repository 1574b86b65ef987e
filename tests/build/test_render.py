"""Rendering one issue: tiers, paywall, placeholders, UTM, and the premailer fixes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.build.catalog import Catalog
from newsletter.build.inline import inline_css
from newsletter.build.pipeline import check
from newsletter.build.render import RenderedIssue, Renderer
from newsletter.placeholders import fill
from newsletter.workspace import Workspace

DAILY = "issues/daily/2025-05-14.md"
SECOND_PARAGRAPH = "Short-term export credit insurance, which covers payments due within a year"
DIGEST = "Yiwu now subsidises up to 80% of premiums."


def render(ws: Workspace, rel: str = DAILY) -> RenderedIssue:
    catalog = Catalog(ws)
    issue, problems = catalog.load(ws.root / rel)
    assert issue is not None, [p.format() for p in problems]
    issue = catalog.complete(issue, problems)
    return Renderer(ws.config, ws.templates_dir, ws.display).render(issue)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def daily(ws: Workspace) -> RenderedIssue:
    return render(ws)


def test_premium_gets_the_whole_paywalled_story_and_free_only_the_teaser(
    daily: RenderedIssue,
) -> None:
    free, premium = daily.files["free.html"], daily.files["premium.html"]
    teaser = (
        "Uncertainty over the outlook for exports has pushed Beijing to <strong>expand</strong> two"
    )
    assert teaser in squash(free) and teaser in squash(premium)
    assert SECOND_PARAGRAPH in squash(premium) and DIGEST in premium
    assert SECOND_PARAGRAPH not in squash(free) and DIGEST not in free
    assert "China Export and Credit Insurance Corp." in premium
    assert "China Export and Credit Insurance Corp." not in free
    # free readers are invited to subscribe on each paywalled story (the sample has three):
    # a button on the first, a link on the others (#12)
    assert free.count("Subscribe to read the full story") == 1
    assert free.count("Subscribe to read \u2192</a>") == 2
    assert "Subscribe to read" not in premium


def test_free_text_and_web_version_hold_no_paywalled_text_either(daily: RenderedIssue) -> None:
    for name in ("free.txt", "index.html"):
        assert SECOND_PARAGRAPH not in squash(daily.files[name])
        assert DIGEST not in daily.files[name]
    assert SECOND_PARAGRAPH in squash(daily.files["premium.txt"])
    assert f"  - {DIGEST}" in daily.files["premium.txt"]
    assert SECOND_PARAGRAPH not in squash(daily.feed_html)


def test_a_template_that_prints_the_full_summary_fails_the_paywall_guard(ws: Workspace) -> None:
    override = ws.templates_dir / "email/partials/article.mjml.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        "<mj-section><mj-column><mj-text><h2>{{ a.article.title }}</h2>{{ md(a.article.summary) }}"
        "</mj-text></mj-column></mj-section>\n"
    )
    # the web version has its own templates: the same mistake there
    web = ws.templates_dir / "web/partials/article.html.j2"
    web.parent.mkdir(parents=True, exist_ok=True)
    web.write_text("<h2>{{ a.article.title }}</h2>{{ md(a.article.summary) }}\n")
    errors = [p.format() for p in check(ws).errors]
    assert (
        "issues/daily/2025-05-14.md: error: paywall leak: the full text of paywalled story "
        "'China's exporters get more help to withstand the trade war' appears in the free free.html"
    ) in errors
    assert (
        any("appears in the free free.txt" in e for e in errors) is False
    )  # the text part is not templated
    assert any("appears in the free index.html" in e for e in errors)


def test_emails_carry_placeholders_the_web_version_does_not(daily: RenderedIssue) -> None:
    for name in ("free.html", "premium.html"):
        html = daily.files[name]
        assert 'href="%%unsubscribe_url%%"' in html and 'href="%%preferences_url%%"' in html
        assert "%%email%%" in html
    assert "%%unsubscribe_url%%" in daily.files["free.txt"]
    assert "%%" not in daily.files["index.html"]


def test_filling_placeholders_escapes_html_but_not_text(daily: RenderedIssue) -> None:
    values = {
        "email": "a&b<x>@example.com",
        "name": "",
        "unsubscribe_url": "https://u.example/t?a=1&b=2",
        "preferences_url": "https://p.example/",
    }
    html = fill(daily.files["free.html"], values, for_html=True)
    text = fill(daily.files["free.txt"], values, for_html=False)
    assert "a&amp;b&lt;x&gt;@example.com" in html and "<x>" not in html
    assert 'href="https://u.example/t?a=1&amp;b=2"' in html
    assert "Unsubscribe: https://u.example/t?a=1&b=2" in text
    assert "a&b<x>@example.com" in text


def test_article_links_carry_utm_parameters_and_can_be_switched_off(ws: Workspace) -> None:
    html = render(ws).files["free.html"]
    assert (
        'href="https://news.harbourledger.example/2025-05-14/electric-ferries?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=daily-2025-05-14"'
        in html
    )
    config = ws.config_path.read_text().replace(
        "[newsletters.green.utm]",
        "[newsletters.daily.utm]\nenabled = false\n\n[newsletters.green.utm]",
    )
    ws.config_path.write_text(config)
    html = render(Workspace(ws.root)).files["free.html"]
    assert 'href="https://news.harbourledger.example/2025-05-14/electric-ferries"' in html
    assert "utm_" not in html


def test_every_link_is_absolute(daily: RenderedIssue) -> None:
    for name in ("free.html", "premium.html", "index.html"):
        hrefs = re.findall(r'(?:href|src)="([^"]*)"', daily.files[name])
        assert hrefs
        assert [h for h in hrefs if not re.match(r"(https://|%%[a-z_]+%%$)", h)] == []


def test_the_email_basics_are_in_place(daily: RenderedIssue) -> None:
    html = daily.files["free.html"]
    assert '<html lang="en"' in html
    assert "<title>Exporters get more help to weather the tariff war</title>" in html
    assert '<meta name="color-scheme" content="light dark"' in html
    # the preheader is hidden preview text right after <body>
    assert re.search(
        r'<body[^>]*>\s*<div class="preheader" style="display:none;[^"]*"[^>]*>Credit insurance cover is up 15.3%; Yiwu pays 80% of premiums[\u200c\u00a0]+</div>',
        html,
    )
    imgs = re.findall(r"<img [^>]*>", html)
    assert imgs and all(
        re.search(r'alt="[^"]+"', i) and 'width="' in i and 'height="' in i for i in imgs
    )
    assert all('role="presentation"' in t for t in re.findall(r"<table[^>]*>", html))
    assert "456 Main" not in html and "88 Canton Road" in html  # the postal address
    assert "You are receiving The Daily Brief because you signed up" in html


def test_a_free_email_has_one_story_button_and_ends_with_one_call_to_subscribe(
    ws: Workspace,
) -> None:
    """#12: the free weekly had a red button on each of its eight paywalled stories."""
    weekly = render(ws, "issues/weekly/2025-05-17.md")
    free, premium = weekly.files["free.html"], weekly.files["premium.html"]
    buttons = re.findall(r'<td[^>]*class="button"[^>]*>.*?<a [^>]*>(.*?)</a>', free, re.S)
    assert [" ".join(b.split()) for b in buttons] == [
        "Subscribe to read the full story",
        "Subscribe to The Harbour Ledger",
    ]
    locked = len(re.findall(r"FOR SUBSCRIBERS", free))
    assert locked >= 3 and free.count("Subscribe to read \u2192</a>") == locked - 1
    # the call to subscribe comes after the last story, before the footer
    assert free.rindex("FOR SUBSCRIBERS") < free.index("Get every story in full")
    assert free.index("Get every story in full") < free.index("Manage your preferences")
    assert 'class="button"' not in premium and "Get every story in full" not in premium


def test_the_sample_weekly_preheader_counts_its_stories(ws: Workspace) -> None:
    """#12: the sample weekly's preheader said "Eight stories" above ten."""
    weekly = render(ws, "issues/weekly/2025-05-17.md")
    count = int(re.search(r"This week's (\d+) must-read", weekly.files["free.html"]).group(1))
    words = "zero one two three four five six seven eight nine ten eleven twelve".split()
    assert weekly.issue.preheader is not None
    assert weekly.issue.preheader.split()[0].lower() == words[count]


def test_outlook_com_gets_the_dark_mode_rules_too(daily: RenderedIssue) -> None:
    """#12: Outlook.com ignores prefers-color-scheme and marks what it recolours with
    data-ogsc (text) and data-ogsb (backgrounds): every dark-mode rule has its twin."""
    html = daily.files["free.html"]
    media = re.search(r"@media \(prefers-color-scheme: dark\) \{(.*?)\n\s*\}\n", html, re.S)
    assert media is not None
    dark = re.findall(r"([^{}]+?)\s*\{\s*([a-z-]+):\s*([^;]+);\s*\}", media.group(1))
    assert len(dark) >= 10
    for selectors, prop, value in dark:
        prefix = "[data-ogsc] " if prop == "color" else "[data-ogsb] "
        twin = ", ".join(prefix + s.strip() for s in selectors.split(","))
        assert f"{twin} {{ {prop}: {value}; }}" in html, twin
    assert "[data-ogsc] .card .button a" in html  # the button's white text included


# -- the preheader (#12) ----------------------------------------------------------------------

PREHEADER_DIV = re.compile(
    r'<body[^>]*>\s*<div class="preheader" style="([^"]*)"[^>]*>(.*?)</div>', re.S
)


def test_the_preheader_is_padded_so_the_preview_stops_there(daily: RenderedIssue) -> None:
    """Inboxes show the first ~100-150 characters of text: after the preheader, the hidden
    element holds only invisible padding up to its end, enough to fill the preview line, so
    "View in your browser The Harbour Ledger…" never shows."""
    for name in ("free.html", "premium.html"):
        _, text = PREHEADER_DIV.search(daily.files[name]).groups()
        preheader = "Credit insurance cover is up 15.3%; Yiwu pays 80% of premiums"
        assert text.startswith(preheader)
        padding = text[len(preheader) :]
        assert set(padding) == {"\u200c", "\u00a0"}  # zero-width non-joiner, no-break space
        assert len(padding) >= 180
    assert "preheader" not in daily.files["index.html"]  # the web version has none
    assert "Credit insurance cover is up" not in daily.files["free.txt"].split("\n\n")[0]


def test_the_preheader_is_hidden_without_camouflage_colours(daily: RenderedIssue) -> None:
    """White (or background-coloured) text is what spam filters score as hidden text
    (SpamAssassin's HTML_FONT_LOW_CONTRAST): the preheader is hidden by display and size."""
    style, _ = PREHEADER_DIV.search(daily.files["free.html"]).groups()
    rules = dict(r.split(":", 1) for r in style.replace(" ", "").split(";") if r)
    assert rules["display"] == "none" and rules["max-height"] in ("0", "0px")
    assert rules["overflow"] == "hidden" and rules["mso-hide"] == "all"
    assert not {"color", "background", "background-color", "opacity"} & set(rules)


# -- the premailer fixes (newsletter/inline.py): each test fails without its fix ------------


def test_mj_style_inline_css_is_inlined(daily: RenderedIssue) -> None:
    """mjml-python leaves <mj-style inline="inline"> in a <style>: premailer must inline it,
    and only it, as MJML does: MJML's own resets stay in the head."""
    html = daily.files["free.html"]
    h2 = re.search(r"<h2[^>]*>", html).group(0)
    assert "font-size:22px" in h2.replace(" ", "")
    assert "h2 a { color" not in html  # the inlined CSS is not left in the head as well
    assert "p { display: block; margin: 13px 0; }" in html  # MJML's reset is kept, not inlined
    assert not re.search(r'<td style="[^"]*mso-table-lspace', html)


def test_important_survives_in_media_queries(daily: RenderedIssue) -> None:
    """premailer strips !important by default, which breaks MJML's column widths."""
    assert re.search(
        r"@media[^{]*\{\s*\.mj-column-per-100\s*\{[^}]*!important", daily.files["free.html"]
    )


def test_the_doctype_is_kept(daily: RenderedIssue) -> None:
    """premailer drops the lowercase <!doctype html> that mjml-python writes."""
    for name in ("free.html", "premium.html", "index.html"):
        assert daily.files[name].startswith("<!doctype html>\n<html")


def test_web_fonts_and_imports_are_not_fetched(ws: Workspace, no_network: list[str]) -> None:
    """premailer fetches <link> stylesheets and cssutils follows @import: the build must not."""
    override = ws.templates_dir / "email/daily.mjml.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(
        '{% extends "email/base.mjml.j2" %}\n'
        "{% block header %}<mj-raw></mj-raw>{{ super() }}{% endblock %}\n"
    )
    base = (
        Path(__file__).parent.parent.parent / "newsletter/templates/email/base.mjml.j2"
    ).read_text()
    base = base.replace(
        "<mj-raw>",
        '<mj-font name="Merriweather" href="https://fonts.example.net/css?family=Merriweather" />\n'
        "<mj-style>@import url(https://fonts.example.net/more.css);</mj-style>\n<mj-raw>",
        1,
    ).replace('<mj-all font-family="', '<mj-all font-family="Merriweather, ')
    (ws.templates_dir / "email/base.mjml.j2").write_text(base)
    html = render(ws).files["free.html"]
    # the reader's mail client may load the font; the build did not
    assert '<link href="https://fonts.example.net/css?family=Merriweather" rel="stylesheet"' in html
    assert no_network == []


def test_cssutils_prints_nothing(ws: Workspace, capfd: pytest.CaptureFixture[str]) -> None:
    """cssutils logs a warning to stderr for every mso-* property and CSS hack it meets."""
    render(ws)
    css = "p { mso-line-height-rule: exactly; color: red; } a { color: blue;; } .x { *zoom: 1 } }"
    html = inline_css(
        f'<!doctype html><html><head><style type="text/css">{css}</style></head>'
        '<body><p>x</p><a href="https://a.example/">y</a></body></html>',
        [css],
    )
    assert 'style="mso-line-height-rule:exactly;color:red"' in html.replace(" ", "")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_huge_issue_warns_that_gmail_will_clip_it(ws: Workspace) -> None:
    path = ws.root / DAILY
    text = path.read_text()
    head, rest = text.split("articles:\n", 1)
    stories = "".join(
        f"  - title: Story {i}\n    url: https://news.harbourledger.example/x/{i}\n"
        f"    summary: |\n      {'A long sentence about markets and money. ' * 40}\n"
        for i in range(40)
    )
    path.write_text(head + "articles:\n" + stories + rest)
    warnings = [p.format() for p in check(ws, [path]).warnings]
    assert any(
        re.fullmatch(
            r"issues/daily/2025-05-14\.md: warning: free\.html is \d+ KB: Gmail clips emails over "
            r"102 KB, hiding the footer and its unsubscribe link",
            w,
        )
        for w in warnings
    ), warnings


def test_the_weekly_shows_where_each_collected_story_came_from(ws: Workspace) -> None:
    html = squash(render(ws, "issues/weekly/2025-05-17.md").files["premium.html"])
    assert "This week's 10 must-read stories" in html
    assert "By Mei Ling Chow · Monday 12 May 2025" in html
