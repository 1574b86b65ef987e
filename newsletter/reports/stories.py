"""Clicks per story: each clicked URL of an issue mapped to the article record it names (the
build's manifest lists them), or to the kind of link it is when it names none (the header's
"view in browser", the footer's unsubscribe and preferences links, the subscribe buttons).

The database counts the clicks; this module only decides, once per distinct URL, which
story a URL stands for (`attribution.normalise` on both sides, so UTM variants and a
provider's rewriting still match).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from newsletter.build.attribution import ArticleRecord, normalise
from newsletter.store import Store
from newsletter.store import reports as sr
from newsletter.workspace import Workspace

STORY = "story:"
OTHER = "other:"
# the kinds of links that are not stories, in the order shown
LINK_KINDS = ("view in browser", "unsubscribe", "preferences", "subscribe", "publication", "other")


@dataclass(frozen=True)
class TierClicks:
    tier: str
    delivered: int
    clickers: int
    clicks: int

    @property
    def rate(self) -> float | None:
        return self.clickers / self.delivered if self.delivered else None


@dataclass(frozen=True)
class StoryStats:
    issue: str
    key: str
    title: str
    position: int
    section: str | None
    byline: str | None
    tags: list[str]
    paywalled: bool
    clickers: int  # distinct people
    clicks: int
    click_rate: float | None  # clickers among the issue's delivered
    by_tier: list[TierClicks] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["by_tier"] = [{**asdict(t), "rate": t.rate} for t in self.by_tier]
        return data


@dataclass(frozen=True)
class OtherLinks:
    kind: str
    clickers: int
    clicks: int


@dataclass
class Attribution:
    stories: dict[str, list[StoryStats]] = field(default_factory=dict)  # issue → in order
    other: dict[str, list[OtherLinks]] = field(default_factory=dict)  # issue → by kind
    unknown_issues: list[str] = field(default_factory=list)  # no article records found


def article_records(workspace: Workspace, issues: list[str]) -> dict[str, list[ArticleRecord]]:
    """The stories of each issue, from its manifest; an issue whose build is missing or
    older than the records is built first (as `send` does). An issue whose file is gone and
    whose manifest never had records is left out."""
    from newsletter.build.output import Manifest

    def read(issue: str) -> list[ArticleRecord] | None:
        manifest = Manifest.read(workspace.build_dir / issue)
        if manifest is None or manifest.articles is None:
            return None
        return [ArticleRecord.from_json(a) for a in manifest.articles]

    found = {issue: read(issue) for issue in issues}
    stale: list[Path] = []
    for issue, got in found.items():
        if got is None:
            path = _issue_file(workspace, issue)
            if path is not None:
                stale.append(path)
    if stale:
        from newsletter.build.pipeline import build

        build(workspace, stale)
        found.update({issue: read(issue) for issue, got in found.items() if got is None})
    return {issue: got for issue, got in found.items() if got is not None}


def _issue_file(workspace: Workspace, issue: str) -> Path | None:
    newsletter, _, date = issue.partition("/")
    try:
        path = workspace.issue_path(newsletter, dt.date.fromisoformat(date))
    except ValueError:
        return None
    return path if path.is_file() else None


def link_of(url: str, issue: str, records: list[ArticleRecord], workspace: Workspace | None) -> str:
    """`story:<key>` for an article link, else `other:<kind>`."""
    shown = normalise(url)
    for record in records:
        if normalise(record.url) == shown:
            return STORY + record.key
    if workspace is None:
        return OTHER + "other"
    publication = workspace.config.publication
    root = normalise(publication.root_url + "/")
    if shown == normalise(f"{publication.root_url}/{issue}/"):
        return OTHER + "view in browser"
    if shown.startswith(root.rstrip("/") + "/unsubscribe/"):
        return OTHER + "unsubscribe"
    if shown.startswith(root.rstrip("/") + "/preferences/"):
        return OTHER + "preferences"
    if shown.split("?")[0] == normalise(publication.subscribe_link).split("?")[0]:
        return OTHER + "subscribe"
    if shown.startswith(root.rstrip("/")):
        return OTHER + "publication"
    return OTHER + "other"


def attribute(
    store: Store,
    workspace: Workspace | None,
    issues: list[str],
    *,
    by_tier: bool = True,
    delivered: dict[str, int] | None = None,
) -> Attribution:
    """Clicks per story (and per kind of other link) for each of `issues`; per tier too
    unless `by_tier` is False (the report over many issues needs no tiers: a join less)."""
    records = article_records(workspace, issues) if workspace is not None else {}
    result = Attribution(unknown_issues=[i for i in issues if i not in records])
    with store.read() as conn:
        urls = sr.click_urls(conn, issues)
        mapping = [(i, u, link_of(u, i, records.get(i, []), workspace)) for i, u in urls]
        counted = sr.link_clicks(conn, mapping, by_tier=by_tier)
        if by_tier:
            reached_by = sr.delivered_by_tier(conn, issues)
        elif delivered is not None:  # the caller counted them already
            reached_by = {issue: {"all": n} for issue, n in delivered.items()}
        else:
            reached_by = sr.delivered_people(conn, issues)
    per_link: dict[tuple[str, str], list[sr.LinkClicks]] = {}
    for row in counted:
        per_link.setdefault((row.issue, row.link), []).append(row)
    for issue in issues:
        reached = reached_by.get(issue, {})
        total_delivered = sum(reached.values())
        stories = []
        for record in records.get(issue, []):
            rows = per_link.get((issue, STORY + record.key), [])
            clickers = sum(r.clickers for r in rows)  # one tier per person: a sum is distinct
            tiers = sorted({*reached, *(r.tier for r in rows)} - {"unknown"} or {"free"})
            stories.append(
                StoryStats(
                    issue=issue,
                    key=record.key,
                    title=record.title,
                    position=record.position,
                    section=record.section,
                    byline=record.byline,
                    tags=list(record.tags),
                    paywalled=record.paywalled,
                    clickers=clickers,
                    clicks=sum(r.clicks for r in rows),
                    click_rate=clickers / total_delivered if total_delivered else None,
                    by_tier=[
                        TierClicks(
                            tier,
                            reached.get(tier, 0),
                            sum(r.clickers for r in rows if r.tier == tier),
                            sum(r.clicks for r in rows if r.tier == tier),
                        )
                        for tier in (tiers if by_tier else [])
                    ],
                )
            )
        result.stories[issue] = stories
        others = []
        for kind in LINK_KINDS:
            rows = per_link.get((issue, OTHER + kind), [])
            if rows:
                others.append(
                    OtherLinks(kind, sum(r.clickers for r in rows), sum(r.clicks for r in rows))
                )
        result.other[issue] = others
    return result
