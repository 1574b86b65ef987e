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

from newsletter.build.issue import FrontMatter, Issue
from newsletter.config import Config
from newsletter.model import SUBJECT_LIMIT
from newsletter.problems import LineMap, Loc, Problem, Problems, did_you_mean, from_validation_error
from newsletter.workspace import parse_issue_name

SUBJECT_MAX = 78
SHORTENERS = frozenset(
    "bit.ly t.co tinyurl.com goo.gl ow.ly buff.ly is.gd rebrand.ly cutt.ly shorturl.at t.ly "
    "tiny.cc lnkd.in bl.ink rb.gy s.id v.gd".split()
)
_LEFTOVER = re.compile(r"\b(TK|TODO|XXX)\b|\b(lorem ipsum)\b", re.IGNORECASE)
_URL = re.compile(r"https?://([^/\s)\"'>\]]+)[^\s)\"'>\]]*")
_MD_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when present: 10x faster) that keeps dates as text, so
    that pydantic, not YAML, reports a bad date, as a problem with its line."""


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
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        problems.error(shown, None, f"not UTF-8 text (byte {exc.start})")
        return None, problems
    except OSError as exc:
        problems.error(shown, None, f"cannot read: {exc.strerror}")
        return None, problems

    parts = split_front_matter(text)
    if parts is None:
        if text.startswith("---"):
            problems.error(shown, 1, "front matter is not closed: add a line '---' after it")
        else:
            problems.error(shown, 1, "no front matter: the file must start with a line '---'")
        return None, problems
    front, body, _ = parts

    loader = _Loader(front)
    try:
        node = loader.get_single_node()
        data: Any = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        problems.error(shown, line, f"YAML syntax error: {reason}")
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

    key = data.get("newsletter")
    nl = config.newsletters.get(key) if isinstance(key, str) else None
    if "articles" not in data and (nl is None or nl.collect is None):
        problems.error(shown, 2, "missing required key 'articles'")

    try:
        fm = FrontMatter.model_validate(data)
    except ValidationError as exc:
        problems.extend(from_validation_error(exc, FrontMatter, shown, line_of))
        fm = None

    problems.extend(_check_lines(text, shown))
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


def _check_lines(text: str, shown: str) -> list[Problem]:
    """Line-by-line checks of the raw text: leftovers, shorteners, relative links."""
    found: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
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
        for m in _MD_LINK.finditer(line):
            target = m.group(1)
            if urlsplit(target).scheme not in ("http", "https", "mailto"):
                found.append(
                    Problem(
                        shown, number, "error", f"link '{target}' is not an absolute http(s) URL"
                    )
                )
    return found
