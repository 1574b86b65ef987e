"""The one Markdown dialect of the project: CommonMark with tables, raw HTML off.

Raw HTML is shown as text, never passed through: an issue file cannot inject markup.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

_md = MarkdownIt("js-default")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def to_html(source: str) -> str:
    return _md.render(source).strip()


def to_inline_html(source: str) -> str:
    """Markdown for one line (a digest bullet), without the surrounding <p>."""
    return _md.renderInline(source).strip()


def tokens(source: str) -> list[Token]:
    return _md.parse(source)


def links(source: str) -> list[str]:
    """Every link and image target the Markdown renders, however written: inline,
    reference (`[text][r]`), autolink (`<https://…>`) or image, in order."""
    found: list[str] = []
    for token in _md.parse(source):
        for child in token.children or ():
            if child.type == "link_open":
                found.append(str(child.attrGet("href") or ""))
            elif child.type == "image":
                found.append(str(child.attrGet("src") or ""))
    return found


def blocks(source: str) -> list[str]:
    """The source text of each top-level block (paragraph, list, heading…)."""
    lines = source.splitlines()
    found = []
    for token in _md.parse(source):
        if token.level == 0 and token.nesting in (1, 0) and token.map and token.type != "inline":
            start, end = token.map
            found.append("\n".join(lines[start:end]).strip())
    return found


def teaser(source: str) -> str:
    """The first block of a summary: what a free reader sees of a paywalled story."""
    parts = blocks(source)
    return parts[0] if parts else source.strip()


def to_plain(source_html: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed: for comparing content."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", source_html))).strip()
