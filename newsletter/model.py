"""The typed objects that travel from an issue file to the rendered emails.

Validation rules that concern one field live here, as pydantic validators; rules that
span fields or files (duplicate URLs, the file name) live in `issuefile`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Tier(StrEnum):
    FREE = "free"
    PREMIUM = "premium"


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{value}' is not an absolute http(s) URL")
    if any(c.isspace() for c in value):
        raise ValueError(f"'{value}' contains spaces")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


AbsoluteUrl = Annotated[str, AfterValidator(_absolute_url)]
Text = Annotated[str, AfterValidator(_not_blank)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class WhosWho(Strict):
    name: Text
    note: Text


class Article(Strict):
    title: Text
    url: AbsoluteUrl
    section: Text | None = None
    byline: Text | None = None
    published: dt.datetime | None = None
    image: AbsoluteUrl | None = None
    image_alt: Text | None = None
    image_credit: Text | None = None
    paywalled: bool = False
    must_read: bool = False
    tags: list[Annotated[str, AfterValidator(lambda t: _not_blank(t).lower())]] = Field(
        default_factory=list
    )
    summary: Text
    digest: list[Text] = Field(default_factory=list)
    whos_who: list[WhosWho] = Field(default_factory=list)


class FrontMatter(Strict):
    newsletter: Text
    date: dt.date
    status: Literal["draft", "ready"] = "draft"
    subject: Text
    preheader: Text | None = None
    articles: list[Article] | None = None


@dataclass(frozen=True)
class CollectedArticle:
    """An article with the issue it came from (weekly and topic issues collect them)."""

    article: Article
    source: Path | None = None
    source_date: dt.date | None = None


@dataclass(frozen=True)
class Issue:
    newsletter: str
    date: dt.date
    status: Literal["draft", "ready"]
    subject: str
    preheader: str | None
    articles: tuple[Article, ...]
    note: str
    path: Path
    collected: tuple[CollectedArticle, ...] = field(default=())

    @property
    def all_articles(self) -> tuple[Article, ...]:
        return self.articles + tuple(c.article for c in self.collected)


@dataclass(frozen=True)
class ArticleView:
    """One article as one tier sees it: a locked (paywalled, free) story shows its teaser."""

    article: Article
    url: str
    locked: bool
    summary_md: str
    digest: tuple[str, ...]
    whos_who: tuple[WhosWho, ...]
    source_date: dt.date | None = None


@dataclass(frozen=True)
class Recipient:
    """What a send needs of one subscriber."""

    id: int
    email: str
    name: str
    tier: str
