"""Weekly and topic issues: the articles they gather from another newsletter's issues.

The window is the `days` days ending on the collecting issue's date. Only `ready` source
issues count (a draft daily was never sent). Articles the issue lists itself come first,
then the collected ones in date order; a URL appears once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from newsletter.build.issue import Article, CollectedArticle, Issue
from newsletter.config import Collect


def window(date: dt.date, days: int) -> list[dt.date]:
    return [date - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def matches(article: Article, rule: Collect) -> bool:
    """Every configured criterion must hold: must_read, and at least one of the tags."""
    if rule.must_read and not article.must_read:
        return False
    return not rule.tags or bool({t.lower() for t in rule.tags} & set(article.tags))


def collect(issue: Issue, rule: Collect, load: Callable[[str, dt.date], Issue | None]) -> Issue:
    """The issue with its collected articles; `load` returns a valid source issue or None."""
    seen = {a.url for a in issue.articles}
    found: list[CollectedArticle] = []
    for day in window(issue.date, rule.days):
        source = load(rule.source, day)
        if source is None or source.status != "ready":
            continue
        for article in source.articles:
            if article.url not in seen and matches(article, rule):
                seen.add(article.url)
                found.append(CollectedArticle(article, source.path, source.date))
    return dataclasses.replace(issue, collected=tuple(found))
