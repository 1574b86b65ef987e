"""One issue file (YAML front matter + Markdown note) → `build.issue.Issue` and its problems.

Every problem carries the line of the key at fault, so `newsletter check` can say
`issues/daily/2025-05-14.md:23: error: ...`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from newsletter.build import markdown
from newsletter.build.issue import FrontMatter, Issue
from newsletter.config import Config
from newsletter.errors import IssueFileError
from newsletter.model import SUBJECT_LIMIT
from newsletter.problems import (
    LineMap,
    Loc,
    Problem,
    Problems,
    did_you_mean,
    dotted,
    from_validation_error,
)
from newsletter.workspace import parse_issue_name, read_issue_bytes

SUBJECT_MAX = 78
SHORTENERS = frozenset(
    "bit.ly t.co tinyurl.com goo.gl ow.ly buff.ly is.gd rebrand.ly cutt.ly shorturl.at t.ly "
    "tiny.cc lnkd.in bl.ink rb.gy s.id v.gd".split()
)
_LEFTOVER = re.compile(r"\b(TK|TODO|XXX)\b|\b(lorem ipsum)\b", re.IGNORECASE)
_URL = re.compile(r"https?://([^/\s)\"'>\]]+)[^\s)\"'>\]]*")
# Bounds that keep every file one line of error in bounded time and memory (README, "What
# check reports"): YAML anchors and aliases are refused (a 400-byte file can expand to
# billions of nodes), nesting and numbers are bounded, and each text field has a limit.
MAX_DEPTH = 20
MAX_DIGITS = 100
FIELD_LIMITS = {"summary": 20_000, "digest": 2_000, "note": 2_000, "url": 2_000, "image": 2_000}
DEFAULT_LIMIT = 1_000  # subject, preheader, title, byline, tags…
NOTE_LIMIT = 50_000  # the editor's note, the Markdown after the front matter
# all the Markdown of an issue together: Gmail clips an email over 102 KB anyway, and
# markdown-it reads some inputs slowly (unclosed '[' in quadratic time): these keep an
# issue's rendering within about a second
MARKDOWN_LIMIT = 100_000
BRACKET_LIMIT = 2_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_ALIASES = "YAML anchors (&name) and aliases (*name) are not allowed in issue files"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when present: 10x faster) that keeps dates as text, so
    that pydantic, not YAML, reports a bad date, as a problem with its line."""


class _Refused(yaml.YAMLError):
    """A front matter this loader will not build, at a line of the file."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Python refuses to parse an int of over 4,300 digits (ValueError): bound it first."""
    digits = sum(c.isalnum() for c in node.value)
    if digits > MAX_DIGITS:
        raise _Refused(
            node.start_mark.line + 2,
            f"a number with {digits} digits is too long (at most {MAX_DIGITS})",
        )
    return int(yaml.SafeLoader.construct_yaml_int(loader, node))


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], dupes: list[tuple[Loc, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*loc, key)
            if child in lines:
                dupes.append((child, key_node.start_mark.line + 1))
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _walk(item, (*loc, index), lines, dupes)


def _screen(front: str) -> None:
    """Read the YAML events once, before any node is built: refuse anchors and aliases and
    nesting deeper than MAX_DEPTH (a RecursionError later), at the line where they start."""
    loader = _Loader(front)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 2
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise _Refused(line, _ALIASES)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        line, f"the front matter is nested more than {MAX_DEPTH} levels deep"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, front: str) -> tuple[int | None, str]:
    """(line, one-line message) for any error of the YAML loader."""
    if isinstance(exc, _Refused):
        return exc.line, exc.message
    if isinstance(exc, yaml.reader.ReaderError):
        line = front[: exc.position].count("\n") + 2 if exc.position is not None else None
        if isinstance(exc.character, int):
            return line, f"control character U+{exc.character:04X} is not allowed"
        return line, f"YAML syntax error: {exc.reason}"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 2 if mark is not None else None
    reason = str(getattr(exc, "problem", None) or exc).strip().splitlines()[0]
    if "maximum nesting depth" in reason:  # libyaml's own bound, past ours
        return line, f"the front matter is nested more than {MAX_DEPTH} levels deep"
    return line, f"YAML syntax error: {reason}"


def _check_text(data: object, loc: Loc, line_of: LineMap, shown: str, problems: Problems) -> None:
    """Every text of the front matter: no control characters, and within its field's limit
    (an oversized field is an error, not a paragraph the renderer silently drops)."""
    if isinstance(data, dict):
        for key, value in data.items():
            _check_text(value, (*loc, str(key)), line_of, shown, problems)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_text(value, (*loc, index), line_of, shown, problems)
    elif isinstance(data, str):
        name = next((p for p in reversed(loc) if isinstance(p, str)), "")
        limit = FIELD_LIMITS.get(name, DEFAULT_LIMIT)
        if len(data) > limit:
            problems.error(
                shown,
                line_of(loc),
                f"{dotted(loc)}: {len(data):,} characters is too long (at most {limit:,})",
            )
        if m := _CONTROL.search(data):
            problems.error(
                shown,
                line_of(loc),
                f"{dotted(loc)}: control character U+{ord(m.group()):04X} is not allowed",
            )


def _check_note(body: str, start: int, shown: str, problems: Problems) -> None:
    if len(body.strip()) > NOTE_LIMIT:
        problems.error(
            shown,
            start,
            f"the note: {len(body.strip()):,} characters is too long (at most {NOTE_LIMIT:,})",
        )
    if m := _CONTROL.search(body):
        line = start + body.count("\n", 0, m.start())
        problems.error(
            shown, line, f"the note: control character U+{ord(m.group()):04X} is not allowed"
        )


def _check_markdown_size(
    sources: list[str], shown: str, line: int | None, problems: Problems
) -> None:
    total = sum(len(s) for s in sources)
    if total > MARKDOWN_LIMIT:
        problems.error(
            shown,
            line,
            f"the issue has {total:,} characters of Markdown (summaries, digests, who's who, "
            f"note): at most {MARKDOWN_LIMIT:,}",
        )
    brackets = sum(s.count("[") for s in sources)
    if brackets > BRACKET_LIMIT:
        problems.error(
            shown, line, f"the issue's Markdown has {brackets:,} '[': at most {BRACKET_LIMIT:,}"
        )


def _markdown_fields(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The front matter's Markdown texts: summaries, digest points, who's who notes."""
    found: list[tuple[Loc, str]] = []
    articles = data.get("articles")
    for index, article in enumerate(articles if isinstance(articles, list) else ()):
        if not isinstance(article, dict):
            continue
        if isinstance(article.get("summary"), str):
            found.append((("articles", index, "summary"), article["summary"]))
        digest = article.get("digest")
        for n, point in enumerate(digest if isinstance(digest, list) else ()):
            if isinstance(point, str):
                found.append((("articles", index, "digest", n), point))
        people = article.get("whos_who")
        for n, who in enumerate(people if isinstance(people, list) else ()):
            if isinstance(who, dict) and isinstance(who.get("note"), str):
                found.append((("articles", index, "whos_who", n, "note"), who["note"]))
    return found


def _check_links(
    fields: list[tuple[int | None, str]], lines: list[str], shown: str, problems: Problems
) -> None:
    """Every link and image the Markdown renders (inline, reference, autolink) must be
    absolute: a relative link in an email leads nowhere. `fields` are (line, Markdown)."""
    for start, source in fields:
        for target in markdown.links(source):
            parts = urlsplit(target)
            if parts.scheme == "mailto" or (parts.scheme in ("http", "https") and parts.netloc):
                continue
            first = (start or 1) - 1
            line = next((n + 1 for n in range(first, len(lines)) if target in lines[n]), start)
            problems.error(shown, line, f"link '{target}' is not an absolute http(s) URL")


def split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(yaml, body, line where the body starts) or None when there is no front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    return None


def load_issue(
    path: Path, config: Config, display: str | None = None
) -> tuple[Issue | None, Problems]:
    """Parse and validate one issue file; the Issue is None when it has errors."""
    shown = display or str(path)
    problems = Problems()
    try:
        text = read_issue_bytes(path).decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        problems.error(shown, None, f"not UTF-8 text (byte {exc.start})")
        return None, problems
    except IssueFileError as exc:
        problems.error(shown, None, exc.message)
        return None, problems

    parts = split_front_matter(text)
    if parts is None:
        if text.startswith("---"):
            problems.error(shown, 1, "front matter is not closed: add a line '---' after it")
        else:
            problems.error(shown, 1, "no front matter: the file must start with a line '---'")
        return None, problems
    front, body, body_start = parts

    loader = _Loader(front)
    try:
        _screen(front)
        node = loader.get_single_node()
        data: Any = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        line, message = _yaml_problem(exc, front)
        problems.error(shown, line, message)
        return None, problems
    finally:
        loader.dispose()

    if not isinstance(data, dict):
        problems.error(shown, 2, "the front matter must be a mapping of keys to values")
        return None, problems

    raw: dict[Loc, int] = {}
    dupes: list[tuple[Loc, int]] = []
    _walk(node, (), raw, dupes)
    line_of = LineMap(raw, offset=1)
    for loc, line in dupes:
        problems.error(shown, line + 1, f"duplicate key '{loc[-1]}'")

    before = len(problems)
    _check_text(data, (), line_of, shown, problems)
    _check_note(body, body_start, shown, problems)
    sources = [source for _, source in _markdown_fields(data)] + [body]
    _check_markdown_size(sources, shown, None, problems)
    if len(problems) > before:  # oversized or unprintable: validate no further
        return None, problems

    key = data.get("newsletter")
    nl = config.newsletters.get(key) if isinstance(key, str) else None
    if "articles" not in data and (nl is None or nl.collect is None):
        problems.error(shown, 2, "missing required key 'articles'")

    try:
        fm = FrontMatter.model_validate(data)
    except ValidationError as exc:
        problems.extend(from_validation_error(exc, FrontMatter, shown, line_of))
        fm = None

    text_lines = text.splitlines()
    problems.extend(_check_lines(text_lines, shown))
    fields = [(line_of(loc), source) for loc, source in _markdown_fields(data)]
    _check_links([*fields, (body_start, body)], text_lines, shown, problems)
    if fm is None:
        return None, problems

    _check_consistency(fm, path, config, shown, line_of, problems)
    if problems.has_errors:
        return None, problems
    issue = Issue(
        newsletter=fm.newsletter,
        date=fm.date,
        status=fm.status,
        subject=fm.subject,
        preheader=fm.preheader,
        articles=tuple(fm.articles or ()),
        note=body.strip(),
        path=path,
        send_at=fm.send_at,
    )
    return issue, problems


def _check_consistency(
    fm: FrontMatter, path: Path, config: Config, shown: str, line_of: LineMap, problems: Problems
) -> None:
    """Rules that span fields, the file name and the configuration."""
    nl = config.newsletters.get(fm.newsletter)
    if nl is None:
        hint = did_you_mean(fm.newsletter, config.newsletters)
        problems.error(
            shown,
            line_of(("newsletter",)),
            f"newsletter '{fm.newsletter}' is not configured in newsletter.toml{hint}",
        )
    named = parse_issue_name(path)
    if named is None:
        problems.error(shown, None, "the file name must be the issue's date, like 2025-05-14.md")
    else:
        if named[1] != fm.date:
            problems.error(
                shown,
                line_of(("date",)),
                f"date {fm.date} does not match the file name {path.name}",
            )
        if nl is not None and named[0] != fm.newsletter:
            problems.error(
                shown,
                line_of(("newsletter",)),
                f"newsletter '{fm.newsletter}' does not match the folder issues/{named[0]}/",
            )
    if fm.articles == [] and (nl is None or nl.collect is None):
        problems.error(shown, line_of(("articles",)), "articles: list at least one article")

    seen: dict[str, int] = {}
    ids: dict[str, int] = {}
    for index, article in enumerate(fm.articles or ()):
        if article.image and not article.image_alt:
            problems.error(
                shown,
                line_of(("articles", index, "image")),
                f"articles[{index}]: image_alt is required when image is set",
            )
        if article.url in seen:
            problems.error(
                shown,
                line_of(("articles", index, "url")),
                f"articles[{index}]: the same URL is already used by articles[{seen[article.url]}]",
            )
        seen.setdefault(article.url, index)
        if article.id is not None:
            if article.id in ids:
                problems.error(
                    shown,
                    line_of(("articles", index, "id")),
                    f"articles[{index}]: the id '{article.id}' is already used by "
                    f"articles[{ids[article.id]}]",
                )
            ids.setdefault(article.id, index)

    if not fm.preheader:
        problems.warning(
            shown,
            line_of(("subject",)),
            "no preheader: inboxes will show the first words of the email instead",
        )
    if len(fm.subject) > SUBJECT_LIMIT:
        problems.error(
            shown,
            line_of(("subject",)),
            f"subject is {len(fm.subject)} characters: over {SUBJECT_LIMIT}, "
            "the longest a mail header can carry",
        )
    elif len(fm.subject) > SUBJECT_MAX:
        problems.warning(
            shown,
            line_of(("subject",)),
            f"subject is {len(fm.subject)} characters: over {SUBJECT_MAX}, inboxes cut it off",
        )
    if fm.status == "draft":
        problems.warning(
            shown, line_of(("status",)), "status is draft: it cannot be sent until it is 'ready'"
        )


def _check_lines(lines: list[str], shown: str) -> list[Problem]:
    """Line-by-line checks of the raw text: leftovers, shorteners."""
    found: list[Problem] = []
    for number, line in enumerate(lines, start=1):
        for m in _LEFTOVER.finditer(line):
            word = m.group(1) or m.group(2)
            if m.group(1) and word != word.upper():
                continue
            found.append(Problem(shown, number, "warning", f"leftover placeholder '{word}'"))
        for m in _URL.finditer(line):
            host = m.group(1).lower().split(":")[0]
            if host in SHORTENERS:
                found.append(
                    Problem(
                        shown,
                        number,
                        "warning",
                        f"link to a URL shortener: {m.group(0)} (link to the page itself)",
                    )
                )
    return found
