"""The text/plain part: 72 columns, links listed, headings and bullets kept."""

from __future__ import annotations

import re

from newsletter.build.plaintext import LinkList, from_markdown
from newsletter.workspace import Workspace


def test_markdown_becomes_readable_text() -> None:
    links = LinkList()
    text = from_markdown(
        "## Why it matters\n\nExporters got **more** help from [Sinosure](https://s.example/a) "
        "and [the city](https://y.example/) this year, which is a long sentence that wraps.\n\n"
        "- first point\n- second point, with [a link](https://s.example/a)\n\n1. one\n2. two\n",
        links,
    )
    assert text == (
        "Why it matters\n"
        "==============\n"
        "\n"
        "Exporters got more help from Sinosure [1] and the city [2] this year,\n"
        "which is a long sentence that wraps.\n"
        "\n"
        "- first point\n"
        "- second point, with a link [1]\n"
        "\n"
        "1. one\n"
        "2. two"
    )
    assert links.take() == ["[1] https://s.example/a", "[2] https://y.example/"]
    assert links.take() == []


def test_the_sample_text_emails_fit_72_columns_except_urls(ws: Workspace) -> None:
    from newsletter.build.pipeline import build

    assert build(ws).ok
    for path in (ws.root / "build").rglob("*.txt"):
        text = path.read_text()
        long = [
            line
            for line in text.splitlines()
            if len(line) > 72 and not re.search(r"(https?://|%%)\S+$", line)
        ]
        assert long == [], path
        assert "<" not in text.replace("<mailto", "")  # no HTML in the text part


def test_the_text_email_lists_story_links_and_footer(ws: Workspace) -> None:
    from tests.build.test_render import render

    text = render(ws).files["premium.txt"]
    assert text.startswith("THE HARBOUR LEDGER | The Daily Brief\nWednesday 14 May 2025\n")
    assert (
        "IN DEPTH | FOR SUBSCRIBERS\nChina's exporters get more help to withstand the trade war\nBy Jane Doe\n"
        in text
    )
    assert (
        "In 30 seconds:\n  - Short-term export credit insurance cover rose 15.3% year on year.\n"
        in text
    )
    assert (
        "Who's who:\n  - China Export and Credit Insurance Corp.: A policy-backed export\n    credit insurer.\n"
        in text
    )
    assert (
        "Read the full story:\nhttps://news.harbourledger.example/2025-05-14/export-credit-insurance?utm_source="
        in text
    )
    assert "Unsubscribe: %%unsubscribe_url%%\n" in text
    assert "88 Canton Road" in text
