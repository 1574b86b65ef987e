"""`newsletter draft`: an issue file drafted from the publisher's feed, for the editor to
review and commit.

Each feed item becomes an article record (title, absolute url without the feed's tracking
parameters, a Markdown summary of its cleaned HTML, image, byline, section, tags, published,
paywalled), or a line saying why not. Stories an earlier issue of the same newsletter carried
(same URL once normalised) are left out and listed. The file is written as a draft, never
over an existing one, atomically; what the feed cannot give (digest, who's who, must_read,
the preheader, the note) is left to the editor, with a comment saying so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from newsletter.build import feed as feeds
from newsletter.build.catalog import Catalog
from newsletter.build.issue import Article
from newsletter.build.output import atomic_create
from newsletter.config import FeedSettings
from newsletter.errors import ConfigError, WorkspaceError
from newsletter.workspace import Workspace, parse_issue_name

# removed with everything inside them before the HTML becomes Markdown
DROPPED = ("script", "style", "iframe", "object", "embed", "noscript", "form", "svg", "video")
FIELD_ORDER = (
    "title",
    "url",
    "section",
    "byline",
    "published",
    "image",
    "image_alt",
    "image_credit",
    "paywalled",
    "tags",
)


@dataclass
class DraftReport:
    path: Path
    text: str
    source: str
    taken: list[tuple[str, str]] = field(default_factory=list)  # (title, url)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (which, why)
    written: bool = False


def normalise_url(url: str, strip: list[str] | tuple[str, ...] = ()) -> str:
    """The form two links to one story share: scheme and host in lower case, no fragment,
    no tracking parameters (`strip`, and any utm_*), no trailing slash."""
    parts = urlsplit(url.strip())
    dropped = {s.lower() for s in strip}
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in dropped and not k.lower().startswith("utm_")
    ]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query, doseq=True), "")
    )


def strip_tracking(url: str, strip: list[str]) -> str:
    """`url` without the tracking parameters the feed added (the story's own ones stay)."""
    parts = urlsplit(url)
    dropped = {s.lower() for s in strip}
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in dropped
    ]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def html_to_markdown(html: str, base: str) -> str:
    """A feed's HTML as Markdown: scripts, styles, frames and images (tracking pixels, and
    the story's picture, which is its own field) removed with a real HTML parser, relative
    links resolved against the story's URL, then converted by markdownify."""
    from lxml import etree
    from lxml import html as lxml_html
    from markdownify import markdownify

    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return ""
    for element in list(root.iter(*DROPPED, "img", "picture", "source", "link", "meta")):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)  # drops its tail text too; keep it
            if element.tail and element.tail.strip():
                _append_text(parent, element.tail)
    for element in root.iter(etree.Comment):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith("#") or href.lower().startswith(("javascript:", "data:")):
            anchor.attrib.pop("href", None)
        else:
            anchor.set("href", urljoin(base, href))
    cleaned = etree.tostring(root, encoding="unicode", method="html")
    text = markdownify(
        cleaned, heading_style="ATX", bullets="-", newline_style="BACKSLASH", strip=["span"]
    )
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:  # at most one blank line between blocks
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _append_text(parent: Any, text: str) -> None:
    children = list(parent)
    if children:
        last = children[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "false", "no", "0", "free", "none")


def to_record(item: feeds.FeedItem, rules: FeedSettings) -> dict[str, Any] | str:
    """The article record of one feed item, or why the item cannot become an article."""
    if not item.title:
        return "it has no title"
    if not item.link:
        return "it has no link"
    link = item.link.strip()
    if not feeds.is_url(link):
        if not item.base or not feeds.is_url(item.base):
            return f"its link '{link}' is relative and the feed gives no base to resolve it"
        link = urljoin(item.base, link)
    url = strip_tracking(link, rules.strip_params)
    summary = html_to_markdown(item.description_html or "", url)
    if not summary:
        return "it has no description or content to summarise"
    categories = list(item.categories)
    premium = (rules.paywalled_category or "").casefold()
    paywalled = bool(premium) and any(c.casefold() == premium for c in categories)
    if rules.paywalled_field and _truthy(item.fields.get(rules.paywalled_field, "")):
        paywalled = True
    if premium:
        categories = [c for c in categories if c.casefold() != premium]
    record: dict[str, Any] = {"title": " ".join(item.title.split()), "url": url}
    if categories:
        record["section"] = categories[0]
    if item.author:
        record["byline"] = item.author
    if item.published:
        record["published"] = item.published
    if item.image:
        image = urljoin(url, item.image.strip())
        if feeds.is_url(image):
            record["image"] = image
            record["image_alt"] = " ".join((item.image_alt or item.title).split())
            if item.image_credit:
                record["image_credit"] = item.image_credit
    record["paywalled"] = paywalled
    tags = sorted({c.lower() for c in categories}, key=[c.lower() for c in categories].index)
    record["tags"] = tags
    record["summary"] = summary
    try:
        Article.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"it does not make a valid article ({where}: {first['msg']})"
    return record


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML one


def render_file(
    newsletter: str,
    date: dt.date,
    subject: str,
    records: list[dict[str, Any]],
    source: str,
    drafted_at: dt.datetime,
) -> str:
    """The issue file: front matter (written by hand: every value quoted as JSON, which YAML
    reads the same) and an empty note."""
    lines = [
        "---",
        f"# Drafted by `newsletter draft` from {source} at {drafted_at:%Y-%m-%d %H:%M %Z}.",
        "# Left for the editor: the subject (it is the lead story's title), a preheader,",
        "# each story's digest bullets, who's who and must_read, and the note below.",
        f"newsletter: {newsletter}",
        f"date: {date.isoformat()}",
        "status: draft",
        f"subject: {_scalar(subject)}",
        "articles:",
    ]
    for record in records:
        first = True
        for key in FIELD_ORDER:
            if key in record:
                lead = "  - " if first else "    "
                lines.append(f"{lead}{key}: {_scalar(record[key])}")
                first = False
        lines.append("    summary: |")
        lines.extend(f"      {line}" if line else "" for line in record["summary"].splitlines())
    lines += ["---", ""]
    return "\n".join(lines)


def _previous(catalog: Catalog, newsletter: str, date: dt.date, days: int) -> list[Path]:
    """The other issue files of `newsletter` dated up to `days` before `date` (0: all) or
    after it, oldest first: each is parsed, so an archive of years is not read every day."""
    workspace = catalog.workspace
    folder = workspace.issues_dir / newsletter
    if not folder.is_dir():
        return []
    found = []
    for path in workspace.issue_files([folder]):
        named = parse_issue_name(path)
        recent = not days or (named is not None and named[1] >= date - dt.timedelta(days=days))
        if named and named[0] == newsletter and named[1] != date and recent:
            found.append((named[1], path))
    return [p for _, p in sorted(found)]


def draft(
    workspace: Workspace,
    newsletter: str,
    date: dt.date | None = None,
    source: str | None = None,
    since_hours: float | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    timeout: float | None = None,
) -> DraftReport:
    config = workspace.config
    config.check_newsletter(newsletter)
    nl = config.newsletters[newsletter]
    if nl.collect is not None:
        raise ConfigError(
            f"newsletter '{newsletter}' collects its stories from '{nl.collect.source}': "
            "there is nothing to draft from a feed"
        )
    rules = nl.feed or FeedSettings()
    source = source or rules.url
    if not source:
        raise ConfigError(
            f"no feed for '{newsletter}': set url in [newsletters.{newsletter}.feed] "
            "in newsletter.toml, or give --from"
        )
    tz = ZoneInfo(nl.timezone or config.publication.timezone)
    now = now or dt.datetime.now(dt.UTC)
    date = date or now.astimezone(tz).date()
    path = workspace.issue_path(newsletter, date)
    if path.exists() and not dry_run:
        raise WorkspaceError("already exists; not overwriting it", workspace.display(path))

    catalog = Catalog(workspace)
    sent: dict[str, str] = {}  # normalised URL → the earlier issue that carried it
    since: dt.datetime | None = None
    for earlier in _previous(catalog, newsletter, date, rules.dedupe_days):
        issue, _ = catalog.load(earlier)
        if issue is None:
            continue
        for article in issue.articles:
            sent.setdefault(
                normalise_url(article.url, rules.strip_params), f"{newsletter}/{issue.date}"
            )
        if issue.date < date:  # the window starts after the newest story it carried
            dated = [a.published for a in issue.articles if a.published]
            since = max(dated) if dated else dt.datetime.combine(issue.date, dt.time(), tz)
    if since_hours is not None:
        since = now - dt.timedelta(hours=since_hours)

    fetched = feeds.load(source, timeout or rules.timeout)
    report = DraftReport(path, "", source)
    items = list(fetched.items)
    if rules.order == "newest":
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        items.sort(key=lambda i: (i.published or oldest, -i.position), reverse=True)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    most = limit or rules.limit
    for item in items:
        record = to_record(item, rules)
        if isinstance(record, str):
            report.left_out.append((item.label, record))
            continue
        key = normalise_url(record["url"], rules.strip_params)
        if key in sent:
            report.left_out.append((item.label, f"already in {sent[key]}"))
        elif key in seen:
            report.left_out.append((item.label, "the same story twice in the feed"))
        elif since is not None and item.published is not None and item.published <= since:
            report.left_out.append(
                (item.label, f"published before the window (since {since:%Y-%m-%d %H:%M %Z})")
            )
        elif len(records) >= most:
            report.left_out.append((item.label, f"over the limit of {most} stories"))
        else:
            seen.add(key)
            records.append(record)
            report.taken.append((record["title"], record["url"]))
    if not records:
        raise WorkspaceError(
            f"nothing to draft: none of the feed's {len(items)} item(s) can be taken"
            + (f" ({report.left_out[0][0]}: {report.left_out[0][1]}…)" if report.left_out else ""),
            source,
        )
    report.text = render_file(
        newsletter, date, records[0]["title"], records, source, now.astimezone(tz)
    )
    if not dry_run:
        try:
            atomic_create(path, report.text.encode("utf-8"))
        except FileExistsError:
            raise WorkspaceError(
                "already exists; not overwriting it", workspace.display(path)
            ) from None
        report.written = True
    return report
