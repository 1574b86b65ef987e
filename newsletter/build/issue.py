"""The issue file's model: front matter → `Issue`, and an article as one tier sees it.

Validation rules that concern one field live here, as pydantic validators; rules that
span fields or files (duplicate URLs, the file name) live in `issuefile`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from newsletter.model import AbsoluteUrl, Text

Tag = Annotated[Text, AfterValidator(str.lower)]  # tags match whatever their case


class Strict(BaseModel):
    # defer_build: a model is built when first validated, so a nested section is built once,
    # inside its parent, not also on its own when this module is imported (#16: 10-20 ms)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, defer_build=True)


class WhosWho(Strict):
    name: Text
    note: Text


class Article(Strict):
    id: Text | None = None  # the story's stable key in statistics (default: its URL)
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
    tags: list[Tag] = Field(default_factory=list)
    summary: Text
    digest: list[Text] = Field(default_factory=list)
    whos_who: list[WhosWho] = Field(default_factory=list)


class FrontMatter(Strict):
    newsletter: Text
    date: dt.date
    status: Literal["draft", "ready"] = "draft"
    subject: Text
    preheader: Text | None = None
    send_at: dt.datetime | None = None  # overrides the newsletter's send_time (#17)
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
    send_at: dt.datetime | None = None  # when `send --due` sends it, if not the newsletter's time

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
