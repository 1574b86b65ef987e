"""The text/plain email, made from the Markdown source rather than scraped from the HTML.

72 columns, links numbered in the text and listed under each story, headings and bullets kept.
URLs are never broken across lines: a long one stands on its own line.
"""

from __future__ import annotations

import textwrap

from markdown_it.token import Token

from newsletter.build import markdown
from newsletter.build.issue import ArticleView, Issue
from newsletter.build.templating import longdate
from newsletter.config import Config
from newsletter.model import Tier
from newsletter.placeholders import marker

WIDTH = 72


class LinkList:
    """Numbers links as they appear: `text [1]`, then `[1] https://…` in the list."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def take(self) -> list[str]:
        """The links numbered since the last call, as lines, then start a new list."""
        lines = [f"[{i}] {url}" for i, url in enumerate(self.urls, start=1)]
        self.urls = []
        return lines


def wrap(text: str, indent: str = "", first: str | None = None, width: int = WIDTH) -> str:
    return textwrap.fill(
        text,
        width=width,
        initial_indent=first if first is not None else indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _inline(children: list[Token], links: LinkList) -> str:
    out: list[str] = []
    href: str | None = None
    for tok in children:
        if tok.type == "text":
            out.append(tok.content)
        elif tok.type == "code_inline":
            out.append(f"`{tok.content}`")
        elif tok.type == "softbreak":
            out.append(" ")
        elif tok.type == "hardbreak":
            out.append("\n")
        elif tok.type == "link_open":
            href = str(tok.attrs.get("href", ""))
        elif tok.type == "link_close" and href:
            if href.startswith("mailto:"):
                out.append(f" <{href.removeprefix('mailto:')}>")
            else:
                out.append(f" [{links.number(href)}]")
            href = None
        elif tok.type == "image":
            out.append(tok.content or "")
    return "".join(out)


def from_markdown(source: str, links: LinkList, indent: str = "") -> str:
    """Markdown → wrapped text; blocks apart by a blank line, list items kept together."""
    out: list[tuple[str, bool]] = []  # (block, joins the previous block without a blank line)
    lists: list[list[int | str]] = []  # per open list: [marker, number, items so far]
    quote = 0
    marker: str | None = None
    heading: str | None = None
    later_item = False
    for tok in markdown.tokens(source):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1) or 1) if kind == "ordered_list_open" else 1
            lists.append(["-" if kind == "bullet_list_open" else "1.", start - 1, 0])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            lists[-1][1] = int(lists[-1][1]) + 1
            lists[-1][2] = int(lists[-1][2]) + 1
            marker = "-" if lists[-1][0] == "-" else f"{lists[-1][1]}."
            later_item = int(lists[-1][2]) > 1
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "heading_open":
            heading = tok.tag
        elif kind == "hr":
            out.append((indent + "-" * (WIDTH - len(indent)), False))
        elif kind in ("fence", "code_block"):
            code = "\n".join(indent + "    " + line for line in tok.content.rstrip().split("\n"))
            out.append((code, False))
        elif kind == "inline":
            text = _inline(tok.children or [], links)
            prefix = indent + "> " * quote + "  " * max(len(lists) - 1, 0)
            if heading:
                title = text.upper() if heading == "h1" else text
                rule = ("=" if heading in ("h1", "h2") else "-") * min(len(title), WIDTH)
                out.append((f"{prefix}{title}\n{prefix}{rule}", False))
                heading = None
            elif marker:
                first = prefix + marker + " "
                hang = prefix + " " * (len(marker) + 1)
                lines = [
                    wrap(p, hang, first if i == 0 else hang) for i, p in enumerate(text.split("\n"))
                ]
                out.append(("\n".join(lines), later_item))
                marker = None
            else:
                hang = prefix + ("  " * bool(lists))
                out.append(("\n".join(wrap(p, hang) for p in text.split("\n")), False))
    text = ""
    for block, tight in out:
        if block.strip():
            text += ("\n" if tight else "\n\n") + block if text else block
    return text


def _rule(char: str = "-") -> str:
    return char * WIDTH


def email(
    config: Config, issue: Issue, articles: list[ArticleView], tier: Tier, web_url: str
) -> str:
    """The whole text/plain email for one tier, with `placeholders` markers in the footer."""
    pub = config.publication
    nl = config.newsletters[issue.newsletter]
    links = LinkList()
    out = [
        f"{pub.name.upper()} | {nl.title}",
        longdate(issue.date),
        "",
        wrap(issue.subject),
        "",
        f"View in your browser: {web_url}",
    ]
    if issue.note:
        out += ["", from_markdown(issue.note, links)]
        out += _links(links)
    for index, view in enumerate(articles, start=1):
        a = view.article
        out += ["", _rule("=" if index == 1 else "-"), ""]
        kicker = " | ".join(
            x
            for x in (
                a.section.upper() if a.section else "",
                "FOR SUBSCRIBERS" if a.paywalled else "",
            )
            if x
        )
        if kicker:
            out.append(kicker)
        out.append(wrap(a.title))
        if a.byline:
            out.append(wrap(f"By {a.byline}"))
        if view.source_date:
            out.append(f"From {longdate(view.source_date)}")
        out += ["", from_markdown(view.summary_md, links)]
        if view.digest:
            out += ["", "In 30 seconds:"]
            out.append(
                "\n".join(
                    wrap(markdown.to_plain(markdown.to_inline_html(d)), "    ", "  - ")
                    for d in view.digest
                )
            )
        if view.whos_who:
            out += ["", "Who's who:"]
            out.append(
                "\n".join(wrap(f"{w.name}: {w.note}", "    ", "  - ") for w in view.whos_who)
            )
        out.append("")
        if view.locked:
            out.append(wrap("This story is for subscribers. Subscribe to read it in full:"))
            out.append(pub.subscribe_link)
        else:
            out += ["Read the full story:", view.url]
        out += _links(links)
    out += [
        "",
        _rule("="),
        "",
        wrap(f"This email was sent to {marker('email')}. {nl.why}"),
        "",
        f"Manage your preferences: {marker('preferences_url')}",
        f"Unsubscribe: {marker('unsubscribe_url')}",
        "",
        wrap(pub.address),
    ]
    if tier is Tier.FREE:
        out += ["", wrap(f"Get every story in full: subscribe at {pub.subscribe_link}")]
    return "\n".join(line.rstrip() for line in "\n".join(out).split("\n")).strip() + "\n"


def _links(links: LinkList) -> list[str]:
    listed = links.take()
    return ["", "Links:", *listed] if listed else []
