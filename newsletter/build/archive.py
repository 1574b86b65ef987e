"""The archive page and one Atom feed per newsletter, made from the built issues' manifests.

Feeds carry the newest 50 issues, with the free content only (teasers for paywalled
stories). Dates come from the issues, never the clock, so two builds give the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from newsletter.build.output import Manifest, write_if_changed
from newsletter.config import Config

FEED_ENTRIES = 50  # the newest issues; feed readers want a page, not the whole archive


@dataclass(frozen=True)
class Entry:
    newsletter: str
    title: str
    date: dt.date
    subject: str
    preheader: str | None


def write_archive(
    out: Path,
    config: Config,
    env: jinja2.Environment,
    manifests: list[Manifest],
    empty_date: dt.datetime,
) -> list[Path]:
    """Write build/index.html and build/<newsletter>/feed.xml; return the files that changed.
    A feed with no issue is dated by the newest issue of any newsletter, else `empty_date`."""
    ordered = sorted(manifests, key=lambda m: (m.date, m.newsletter), reverse=True)
    entries = [
        Entry(m.newsletter, m.title, dt.date.fromisoformat(m.date), m.subject, m.preheader)
        for m in ordered
    ]
    page = env.get_template("web/archive.html.j2").render(
        pub=config.publication,
        colors=config.publication.colors,
        newsletters=sorted(config.newsletters.items()),
        entries=entries,
    )
    written = []
    if write_if_changed(out / "index.html", page.encode()):
        written.append(out / "index.html")
    by_newsletter: dict[str, list[Manifest]] = defaultdict(list)
    for m in ordered:
        by_newsletter[m.newsletter].append(m)
    if ordered:
        empty_date = _stamp(config, ordered[0].date)
    for key in sorted(config.newsletters):
        feed = atom_feed(config, key, by_newsletter.get(key, [])[:FEED_ENTRIES], empty_date)
        if write_if_changed(out / key / "feed.xml", feed):
            written.append(out / key / "feed.xml")
    return written


def _stamp(config: Config, date: str) -> dt.datetime:
    """An issue's time in the feeds: 06:00 on its date, in the publication's time zone."""
    tz = ZoneInfo(config.publication.timezone)
    return dt.datetime.combine(dt.date.fromisoformat(date), dt.time(6, 0), tzinfo=tz)


def atom_feed(
    config: Config, key: str, manifests: list[Manifest], empty_date: dt.datetime
) -> bytes:
    from feedgen.feed import FeedGenerator

    pub = config.publication
    nl = config.newsletters[key]

    def stamp(date: str) -> dt.datetime:
        return _stamp(config, date)

    fg = FeedGenerator()
    fg.id(f"{pub.root_url}/{key}/")
    fg.title(f"{pub.name}: {nl.title}")
    fg.link(href=f"{pub.root_url}/", rel="alternate")
    fg.link(href=f"{pub.root_url}/{key}/feed.xml", rel="self")
    fg.language(pub.language)
    fg.author(name=pub.name)
    fg.subtitle(nl.description or nl.title)
    fg.updated(stamp(manifests[0].date) if manifests else empty_date)
    for m in reversed(manifests):  # feedgen prepends: oldest first gives newest on top
        fe = fg.add_entry()
        fe.id(m.web_url)
        fe.title(m.subject)
        fe.link(href=m.web_url, rel="alternate")
        fe.published(stamp(m.date))
        fe.updated(stamp(m.date))
        if m.preheader:
            fe.summary(m.preheader)
        fe.content(m.feed_html, type="html")
    return fg.atom_str(pretty=True)
