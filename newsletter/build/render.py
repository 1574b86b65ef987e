"""Issue and variant → email HTML and text (Jinja → MJML (mjml-python) → premailer), and
the web version (Jinja → HTML5).

Three variants per issue: `free` and `premium` emails, and `web`, the public web version: a
web page of its own (`web/issue.html.j2`), the free tier's content, links tagged
utm_medium=web, and no per-recipient marker. MJML runs once per email variant;
per-recipient values are `placeholders` markers filled at send time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2
from markupsafe import Markup

from newsletter import placeholders
from newsletter.build import markdown, paywall, plaintext
from newsletter.build.inline import inline_css, inline_styles
from newsletter.build.issue import ArticleView, Issue
from newsletter.build.templating import environment, longdate, problem_from
from newsletter.config import Config, NewsletterConfig
from newsletter.errors import RenderError
from newsletter.model import Tier
from newsletter.problems import Problem

GMAIL_CLIP_BYTES = 102 * 1024

# The preheader: inboxes show the first text of an email after the subject. Padding after it
# (zero-width non-joiner + no-break space pairs, which inboxes print as nothing) keeps the
# preview from running on into "View in your browser" and the masthead. It is hidden by
# display/size/overflow alone: mjml-python's white-on-background text reads to spam filters
# as camouflaged text (SpamAssassin's HTML_FONT_LOW_CONTRAST).
PREHEADER_PADDING = "&zwnj;&nbsp;" * 100
PREHEADER_STYLE = "display:none;max-height:0;max-width:0;overflow:hidden;mso-hide:all"
_MJ_PREVIEW = re.compile(r'(<body[^>]*>\s*)<div style="display:none;[^"]*">(.*?)</div>', re.S)


@dataclass(frozen=True)
class Variant:
    name: str
    tier: Tier
    web: bool


VARIANTS = (
    Variant("free", Tier.FREE, web=False),
    Variant("premium", Tier.PREMIUM, web=False),
    Variant("web", Tier.FREE, web=True),
)


@dataclass
class RenderedIssue:
    issue: Issue
    files: dict[str, str]  # file name in the issue's build folder → content
    feed_html: str  # the free content, for the Atom feed entry
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Timings:
    """Seconds spent per stage, summed over calls: for bench/."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start


def with_utm(
    url: str, nl_key: str, nl: NewsletterConfig, issue: Issue, medium: str | None = None
) -> str:
    """Article links carry UTM parameters unless the newsletter turns them off; `medium` is
    utm_medium (the email's by default), and an empty one means no UTM parameters."""
    medium = nl.utm.medium if medium is None else medium
    if not nl.utm.enabled or not medium:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    campaign = nl.utm.campaign.format(newsletter=nl_key, date=issue.date.isoformat())
    extra = [
        ("utm_source", nl.utm.source),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
    ]
    query += [(k, v) for k, v in extra if k not in present and v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def web_url(config: Config, issue: Issue) -> str:
    return f"{config.publication.root_url}/{issue.newsletter}/{issue.date.isoformat()}/"


def feed_url(config: Config, key: str) -> str:
    return f"{config.publication.root_url}/{key}/feed.xml"


def views(issue: Issue, config: Config, tier: Tier, medium: str | None = None) -> list[ArticleView]:
    """The stories as a reader of `tier` sees them; links tagged with utm_medium `medium`."""
    nl = config.newsletters[issue.newsletter]
    dated = [(a, None) for a in issue.articles] + [
        (c.article, c.source_date) for c in issue.collected
    ]
    out = []
    for article, source_date in dated:
        locked = article.paywalled and tier is Tier.FREE
        out.append(
            ArticleView(
                article=article,
                url=with_utm(article.url, issue.newsletter, nl, issue, medium),
                locked=locked,
                summary_md=markdown.teaser(article.summary) if locked else article.summary,
                digest=() if locked else tuple(article.digest),
                whos_who=() if locked else tuple(article.whos_who),
                source_date=source_date,
            )
        )
    return out


class Renderer:
    """Holds the Jinja environment for one build; render() is called once per issue."""

    def __init__(self, config: Config, templates: Path | None, display: Any = str):
        self.config = config
        self.env = environment(templates)
        self.display = display
        self.timings = Timings()

    def render(self, issue: Issue) -> RenderedIssue:
        nl = self.config.newsletters[issue.newsletter]
        files: dict[str, str] = {}
        problems: list[Problem] = []
        shown = self.display(issue.path)
        for variant in VARIANTS:
            if variant.web:
                articles = views(issue, self.config, variant.tier, nl.utm.web)
                files["index.html"] = self._jinja("web/issue.html.j2", issue, variant, articles)
                if placeholders.used(files["index.html"]):
                    problems.append(
                        Problem(
                            shown,
                            None,
                            "error",
                            "the web version holds a per-recipient placeholder "
                            f"(%%{sorted(placeholders.used(files['index.html']))[0]}%%): "
                            "it is public, so it has none",
                        )
                    )
                continue
            articles = views(issue, self.config, variant.tier)
            mjml_source = self._jinja(f"email/{nl.template}.mjml.j2", issue, variant, articles)
            html = self._mjml(mjml_source, shown, nl.template)
            with self.timings.stage("inline"):
                html = inline_css(html, inline_styles(mjml_source))
            files[f"{variant.name}.html"] = html
            with self.timings.stage("text"):
                files[f"{variant.name}.txt"] = self.text(issue, variant, articles)
            size = len(html.encode())
            if size > GMAIL_CLIP_BYTES:
                problems.append(
                    Problem(
                        shown,
                        None,
                        "warning",
                        f"{variant.name}.html is {size / 1024:.0f} KB: Gmail clips emails over "
                        "102 KB, hiding the footer and its unsubscribe link",
                    )
                )
            stray = placeholders.unknown(html)
            if stray:
                problems.append(
                    Problem(shown, None, "error", f"unknown placeholder %%{sorted(stray)[0]}%%")
                )
        problems += self._footer_problems(files, shown)
        free_views = views(issue, self.config, Tier.FREE, nl.utm.feed)
        feed_html = self._jinja("web/feed_entry.html.j2", issue, VARIANTS[2], free_views)
        free_outputs = {k: v for k, v in files.items() if k.startswith("free") or k == "index.html"}
        free_outputs["feed"] = feed_html
        for article, where in paywall.leaks(free_outputs, list(issue.all_articles)):
            problems.append(
                Problem(
                    shown,
                    None,
                    "error",
                    f"paywall leak: the full text of paywalled story '{article.title}' "
                    f"appears in the free {where}",
                )
            )
        return RenderedIssue(issue, files, feed_html, problems)

    def _footer_problems(self, files: dict[str, str], shown: str) -> list[Problem]:
        """Every output must end with its footer, as it must keep the paywall: each email
        (HTML and text) has its unsubscribe link, each HTML variant the publication's
        address. A template, or a renderer that drops what follows an oversized block,
        must never produce an email its reader cannot leave."""
        found = []
        unsubscribe = placeholders.marker("unsubscribe_url")
        address = markdown.to_plain(self.config.publication.address)
        for name, text in sorted(files.items()):
            if not name.endswith("index.html") and unsubscribe not in text:
                found.append(
                    Problem(
                        shown,
                        None,
                        "error",
                        f"{name} has no unsubscribe link ({unsubscribe}): the footer is missing",
                    )
                )
            elif name.endswith(".html") and address not in markdown.to_plain(text):
                found.append(
                    Problem(
                        shown,
                        None,
                        "error",
                        f"{name} has no footer: the publication's address is missing",
                    )
                )
        return found

    def _context(
        self, issue: Issue, variant: Variant, articles: list[ArticleView]
    ) -> dict[str, Any]:
        pub = self.config.publication
        nl = self.config.newsletters[issue.newsletter]
        # the web version is public: it gets no per-recipient markers at all
        names = () if variant.web else placeholders.NAMES
        images = [a for a in articles if a.article.image]
        return {
            "pub": pub,
            "colors": pub.colors,
            "nl": nl,
            "nl_key": issue.newsletter,
            "issue": issue,
            "tier": variant.tier.value,
            "web": variant.web,
            "articles": articles,
            "note_html": Markup(markdown.to_html(issue.note)) if issue.note else "",
            "web_url": web_url(self.config, issue),
            "archive_url": f"{pub.root_url}/",
            "subscribe_url": pub.subscribe_link,
            "ph": {name: placeholders.marker(name) for name in names},
            "feed_url": feed_url(self.config, issue.newsletter),
            "share_image": images[0].article if images else None,
            "description": issue.preheader or nl.description or nl.title,
            "md": lambda text: Markup(markdown.to_html(text)),
            "md_inline": lambda text: Markup(markdown.to_inline_html(text)),
            "longdate": longdate,
        }

    def _jinja(self, name: str, issue: Issue, variant: Variant, articles: list[ArticleView]) -> str:
        with self.timings.stage("jinja"):
            try:
                return self.env.get_template(name).render(self._context(issue, variant, articles))
            except (
                jinja2.TemplateError,
                TypeError,
                ValueError,
                AttributeError,
                KeyError,
                RecursionError,
            ) as exc:
                raise RenderError(problem_from(exc, self.display)) from exc

    def _mjml(self, source: str, shown: str, template: str) -> str:
        from mjml import mjml2html

        with self.timings.stage("mjml"):
            try:
                return hide_preheader(mjml2html(source, fonts={}, disable_comments=False))
            except ValueError as exc:
                raise RenderError(
                    Problem(shown, None, "error", f"MJML error in template '{template}': {exc}")
                ) from exc

    def text(self, issue: Issue, variant: Variant, articles: list[ArticleView]) -> str:
        return plaintext.email(
            self.config, issue, articles, variant.tier, web_url(self.config, issue)
        )


def hide_preheader(html: str) -> str:
    """mjml-python's <mj-preview> → the preheader, padded, hidden without a colour."""
    return _MJ_PREVIEW.sub(
        lambda m: (
            f'{m.group(1)}<div class="preheader" style="{PREHEADER_STYLE}" '
            f'aria-hidden="true">{m.group(2)}{PREHEADER_PADDING}</div>'
        ),
        html,
        count=1,
    )
