"""`newsletter check --links`: the one part of the build that uses the network (opt-in)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from newsletter.build import markdown
from newsletter.build.issue import Issue
from newsletter.problems import Problem

TIMEOUT = 10


def _status(url: str) -> str | None:
    """None if the URL answers 2xx/3xx, else the reason."""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": "newsletter-check"}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                if response.status < 400:
                    return None
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            reason = f"HTTP {exc.code}"
            if method == "HEAD" and exc.code in (403, 405, 501):
                continue  # some servers refuse HEAD: ask again with GET
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", exc))
        return reason
    return reason


def _urls(issue: Issue) -> list[str]:
    found: list[str] = []
    for a in issue.articles:
        found += [a.url] + ([a.image] if a.image else [])
        for text in [a.summary, *a.digest, *(w.note for w in a.whos_who)]:
            found += _web(markdown.links(text))
    found += _web(markdown.links(issue.note))
    return list(dict.fromkeys(found))


def _web(urls: list[str]) -> list[str]:
    return [u for u in urls if u.startswith(("http://", "https://"))]


def _line_of(path: Path, url: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if url in line:
            return number
    return None


def check_links(issues: list[Issue], display: Callable[[Path], str]) -> list[Problem]:
    pairs = [(issue, url) for issue in issues for url in _urls(issue)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: _status(pair[1]), pairs))
    return [
        Problem(
            display(issue.path), _line_of(issue.path, url), "error", f"broken link {url}: {reason}"
        )
        for (issue, url), reason in zip(pairs, results, strict=True)
        if reason is not None
    ]
