"""The publisher's feed, read for `newsletter draft`: fetched (the command's only network
use), parsed (RSS 2.0 and Atom by feedparser, JSON Feed 1.1 as the plain JSON it is) into
typed `FeedItem`s that `build.draft` turns into articles.

feedparser puts an RSS item's `media:description` into `summary` or `content`, depending on
the order of the elements, so the media fields (the image's description and credit) and the
CMS's own namespaced fields are read from the XML itself, item by item, with lxml.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from newsletter.errors import FeedError

JSON_FEED_VERSION = "https://jsonfeed.org/version/"
MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
MAX_BYTES = 20 * 1024 * 1024  # a feed is a few hundred kilobytes; more is not a feed


@dataclass(frozen=True)
class FeedItem:
    """One story as the feed gives it: nothing checked yet, links as written."""

    position: int  # in the feed's order, from 0
    title: str | None
    link: str | None
    base: str | None  # what a relative link is resolved against (None: nothing)
    description_html: str | None  # the item's description or content, as HTML
    image: str | None = None
    image_alt: str | None = None
    image_credit: str | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    published: dt.datetime | None = None
    fields: dict[str, str] = field(default_factory=dict)  # "prefix:name" → text, for rules

    @property
    def label(self) -> str:
        """How a line about this item names it."""
        return f"item {self.position + 1}" + (f" ({self.title!r})" if self.title else "")


@dataclass(frozen=True)
class Feed:
    source: str  # the URL or file it came from
    title: str | None
    items: tuple[FeedItem, ...]


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def fetch(source: str, timeout: float) -> tuple[bytes, str | None]:
    """The feed's bytes and its base URL (None for a file): a network failure, a non-2xx
    answer or an unreadable file is a FeedError naming the source."""
    if not is_url(source):
        path = Path(source)
        try:
            return path.read_bytes()[:MAX_BYTES], None
        except OSError as exc:
            raise FeedError(f"cannot read the feed: {exc.strerror or exc}", source) from None
    import httpx

    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            response = client.get(
                source, headers={"User-Agent": "newsletter-draft", "Accept": "*/*"}
            )
    except httpx.TimeoutException:
        raise FeedError(f"the feed did not answer within {timeout:g} s", source) from None
    except httpx.HTTPError as exc:
        raise FeedError(f"cannot fetch the feed: {exc}", source) from None
    if not 200 <= response.status_code < 300:
        reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        raise FeedError(f"the feed answered {reason}", source)
    return response.content[:MAX_BYTES], str(response.url)


def load(source: str, timeout: float = 10) -> Feed:
    data, base = fetch(source, timeout)
    return parse(data, source, base)


def parse(data: bytes, source: str, base: str | None) -> Feed:
    """RSS, Atom or JSON Feed → a Feed; a body that is none of them is a FeedError."""
    if data.lstrip()[:1] == b"{":
        return _json_feed(data, source, base)
    import feedparser

    headers = {"content-type": "application/xml"}
    if base:
        headers["content-location"] = base
    # our own cleaning (build.draft) removes whole elements and resolves links against the
    # item's URL: feedparser's sanitiser keeps an iframe's text, its resolver uses the feed's
    parsed = feedparser.parse(
        data, response_headers=headers, resolve_relative_uris=False, sanitize_html=False
    )
    entries = list(parsed.entries)
    if not entries and (parsed.bozo or not parsed.version):
        reason = parsed.get("bozo_exception") or "no RSS, Atom or JSON Feed found"
        raise FeedError(f"not a readable feed: {reason}", source)
    extras = _xml_extras(data, len(entries))
    items = tuple(
        _feedparser_item(n, entry, base, extras[n] if extras else {})
        for n, entry in enumerate(entries)
    )
    return Feed(source, parsed.feed.get("title"), items)


def _xml_extras(data: bytes, count: int) -> list[dict[str, str]] | None:
    """Per item, in order: its namespaced child elements as "prefix:name" → text, the media
    ones (description, credit) from inside media:content or media:group too. None when the
    XML does not give as many items as feedparser found (then only feedparser's view counts)."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None
    if root is None:
        return None
    items = root.findall(".//item") or root.findall(f".//{{{ATOM_NS}}}entry")
    if len(items) != count:
        return None
    found: list[dict[str, str]] = []
    for item in items:
        values: dict[str, str] = {}
        for element in item.iter():
            if element is item or not isinstance(element.tag, str):
                continue
            qname = etree.QName(element)
            if not qname.namespace or qname.namespace == ATOM_NS:
                continue
            prefix = element.prefix or qname.namespace
            text = "".join(element.itertext()).strip()
            key = f"{prefix}:{qname.localname}"
            if text and key not in values:
                values[key] = text
            if qname.namespace == MEDIA_NS and text:
                values.setdefault(f"media:{qname.localname}", text)
        found.append(values)
    return found


def _date(text: str | None, fallback: Any = None) -> dt.datetime | None:
    """An RFC 822 (RSS) or RFC 3339 (Atom, JSON Feed) date with its own offset."""
    if text:
        try:
            return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        try:
            value = email.utils.parsedate_to_datetime(text)
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError, IndexError):
            pass
    if fallback:  # feedparser's own reading, in UTC
        year, month, day, hour, minute, second = fallback[:6]
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    return None


def _is_image(url: str | None, mime: str | None, medium: str | None) -> bool:
    if not url:
        return False
    if mime:
        return mime.lower().startswith("image/")
    if medium:
        return medium.lower() == "image"
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def _feedparser_item(
    position: int, entry: Any, base: str | None, extras: dict[str, str]
) -> FeedItem:
    link = entry.get("link")
    if not link:
        alternate = [x.get("href") for x in entry.get("links", []) if x.get("rel") == "alternate"]
        link = alternate[0] if alternate else None
    media_text = extras.get("media:description")
    candidates = [entry.get("summary_detail"), *entry.get("content", [])]
    html = [
        c.get("value")
        for c in candidates
        if c and c.get("value") and (media_text is None or c.get("value").strip() != media_text)
    ]
    image = alt = None
    contents = [(m, m.get("medium")) for m in entry.get("media_content", [])]
    thumbnails = [(m, "image") for m in entry.get("media_thumbnail", [])]  # always a picture
    for media, medium in contents + thumbnails:
        if _is_image(media.get("url"), media.get("type"), medium):
            image = media.get("url")
            break
    if image is None:
        for enclosure in entry.get("enclosures", []):
            if _is_image(enclosure.get("href"), enclosure.get("type"), None):
                image = enclosure.get("href")
                break
    if image is not None:
        alt = media_text
    categories = tuple(t.get("term") or t.get("label") for t in entry.get("tags", []))
    return FeedItem(
        position=position,
        title=(entry.get("title") or "").strip() or None,
        link=link,
        base=(entry.get("summary_detail") or entry.get("title_detail") or {}).get("base") or base,
        description_html=html[0] if html else None,
        image=image,
        image_alt=alt,
        image_credit=extras.get("media:credit"),
        author=(entry.get("author") or extras.get("dc:creator") or "").strip() or None,
        categories=tuple(c.strip() for c in categories if c and c.strip()),
        published=_date(
            entry.get("published") or entry.get("updated"),
            entry.get("published_parsed") or entry.get("updated_parsed"),
        ),
        fields=extras,
    )


def _json_feed(data: bytes, source: str, base: str | None) -> Feed:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise FeedError(f"not a readable feed: invalid JSON ({exc})", source) from None
    version = document.get("version") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version.startswith(JSON_FEED_VERSION):
        raise FeedError("not a readable feed: JSON without a JSON Feed 'version'", source)
    raw = document.get("items")
    if not isinstance(raw, list):
        raise FeedError("not a readable feed: a JSON Feed needs a list of 'items'", source)
    home = document.get("home_page_url") or document.get("feed_url") or base
    items = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            items.append(FeedItem(n, None, None, None, None))
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        names = [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]
        html = item.get("content_html") or item.get("summary")
        if not html and item.get("content_text"):
            from html import escape

            html = "".join(f"<p>{escape(p)}</p>" for p in str(item["content_text"]).split("\n\n"))
        image = item.get("image") or item.get("banner_image")
        tags = [str(t) for t in item.get("tags") or [] if str(t).strip()]
        flat = {f"json:{k}": str(v) for k, v in item.items() if isinstance(v, str | bool | int)}
        for key, value in item.items():  # extensions: "_ledger": {"premium": true}
            if key.startswith("_") and isinstance(value, dict):
                flat.update({f"{key[1:]}:{k}": str(v) for k, v in value.items()})
        url = item.get("url") or item.get("external_url")
        items.append(
            FeedItem(
                position=n,
                title=(str(item.get("title") or "")).strip() or None,
                link=str(url) if url else None,
                base=urljoin(home, str(url)) if home and url else home,
                description_html=str(html) if html else None,
                image=str(image) if image else None,
                author=", ".join(names) or None,
                categories=tuple(tags),
                published=_date(item.get("date_published") or item.get("date_modified")),
                fields=flat,
            )
        )
    return Feed(source, document.get("title"), tuple(items))
