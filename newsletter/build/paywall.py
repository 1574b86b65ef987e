"""What a free reader may see of a paywalled story, and the guard that proves they see no more.

After rendering, every free output (email HTML and text, web version, feed entry) is searched
for the protected parts of each paywalled story: its summary beyond the teaser and its
digest. A template that prints too much fails the build, naming the story.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from newsletter.build import markdown
from newsletter.build.issue import Article

MIN_FRAGMENT = 24  # shorter pieces ("Yes.") could match by chance
_LINK_REF = re.compile(r"\s*\[\d+\]")
_SPACE = re.compile(r"\s+")


def protected(article: Article) -> list[str]:
    """The plain text of each part of a paywalled story a free reader must not get."""
    if not article.paywalled:
        return []
    parts = markdown.blocks(article.summary)[1:] + list(article.digest)
    texts = [markdown.to_plain(markdown.to_html(p)) for p in parts]
    return [t.casefold() for t in texts if len(t) >= MIN_FRAGMENT]


def _normalise(text: str, is_html: bool) -> str:
    plain = markdown.to_plain(text) if is_html else _LINK_REF.sub("", text)
    plain = re.sub(r"(?m)^\s*(?:[-*]|\d+\.)\s+", " ", plain) if not is_html else plain
    return _SPACE.sub(" ", plain).strip().casefold()


def leaks(outputs: Mapping[str, str], articles: list[Article]) -> list[tuple[Article, str]]:
    """(story, output name) for each protected part found in a free output."""
    guarded = [(a, protected(a)) for a in articles if a.paywalled]
    guarded = [(a, parts) for a, parts in guarded if parts]
    if not guarded:
        return []
    found = []
    for name, text in outputs.items():
        flat = _normalise(text, is_html=not name.endswith(".txt"))
        for article, parts in guarded:
            if any(_SPACE.sub(" ", part) in flat for part in parts):
                found.append((article, name))
    return found
