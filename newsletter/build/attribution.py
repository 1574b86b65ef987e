"""Which story a clicked link names: an article's stable key within its issue, and the
normalisation that maps a provider's reported URL back to it.

An email's article links carry the UTM parameters the build added (`render.with_utm`), and a
provider may report them with more (its own `utm_*`, click ids), a different case of host,
a fragment or a trailing slash. Stripping all of that from both sides gives one form per
story, so a click is attributed whatever the provider did to the URL. An article may also
give an explicit `id`, which then is its key (the URL stays what clicks are matched on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from newsletter.build.issue import Issue

# query parameters a reader's click may carry that say nothing about the page: ours and
# the usual ad-platform click ids
TRACKING = ("utm_",)
TRACKING_NAMES = {"gclid", "fbclid", "mc_cid", "mc_eid", "msclkid", "_hsenc", "_hsmi"}
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: str) -> str:
    """The form of a link that survives what a provider and our UTM parameters do to it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme == "http":
        scheme = "https"  # a provider's tracking redirect may report either
    host = (parts.hostname or "").lower()
    if port is not None and port != DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(TRACKING) and k.lower() not in TRACKING_NAMES
    ]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))


@dataclass(frozen=True)
class ArticleRecord:
    """One story as the manifest records it: enough to attribute clicks and group them."""

    key: str
    url: str
    title: str
    position: int  # 1-based, the order in the email
    section: str | None = None
    byline: str | None = None
    tags: list[str] = field(default_factory=list)
    paywalled: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleRecord:
        return cls(**data)


def records(issue: Issue) -> list[ArticleRecord]:
    """The issue's stories in the order the email shows them (collected ones after)."""
    return [
        ArticleRecord(
            key=article.id or normalise(str(article.url)),
            url=str(article.url),
            title=article.title,
            position=position,
            section=article.section,
            byline=article.byline,
            tags=list(article.tags),
            paywalled=article.paywalled,
        )
        for position, article in enumerate(issue.all_articles, start=1)
    ]
