"""The workspace's issues, each parsed once per run, with weekly/topic collections filled in."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from newsletter import __version__
from newsletter.build.collect import collect, window
from newsletter.build.issuefile import load_issue
from newsletter.build.templating import template_files
from newsletter.errors import IssueFileError
from newsletter.model import Issue
from newsletter.problems import Problems
from newsletter.workspace import Workspace, parse_issue_name, read_issue_bytes


class Catalog:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.config = workspace.config
        self._cache: dict[Path, tuple[Issue | None, Problems]] = {}
        self._global_hash: str | None = None

    def load(self, path: Path) -> tuple[Issue | None, Problems]:
        key = path.resolve()
        if key not in self._cache:
            self._cache[key] = load_issue(path, self.config, self.workspace.display(path))
        return self._cache[key]

    def source(self, newsletter: str, date: dt.date) -> Issue | None:
        path = self.workspace.issue_path(newsletter, date)
        if not path.is_file():
            return None
        return self.load(path)[0]

    def complete(self, issue: Issue, problems: Problems) -> Issue:
        """Fill in a collecting issue's articles; warn when it collected nothing."""
        rule = self.config.newsletters[issue.newsletter].collect
        if rule is None:
            return issue
        full = collect(issue, rule, self.source)
        if not full.all_articles:
            problems.warning(
                self.workspace.display(issue.path),
                None,
                f"collected nothing: no ready '{rule.source}' issue in the {rule.days} days "
                f"to {issue.date} has a matching story",
            )
        return full

    def sources_of(self, path: Path) -> list[Path]:
        """The files a collecting issue reads, known from file names alone."""
        named = parse_issue_name(path)
        nl = self.config.newsletters.get(named[0]) if named else None
        if named is None or nl is None or nl.collect is None:
            return []
        return [
            self.workspace.issue_path(nl.collect.source, day)
            for day in window(named[1], nl.collect.days)
        ]

    def global_hash(self) -> str:
        """Everything besides the issue itself that shapes its output."""
        if self._global_hash is None:
            h = hashlib.sha256(__version__.encode())
            h.update(self.workspace.config_path.read_bytes())
            for path in template_files(self.workspace.templates_dir):
                h.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes())
            self._global_hash = h.hexdigest()
        return self._global_hash

    def input_hash(self, path: Path) -> str:
        h = hashlib.sha256(self.global_hash().encode())
        for part in [path, *self.sources_of(path)]:
            h.update(str(part.name).encode() + b"\0")
            try:
                h.update(read_issue_bytes(part))
            except IssueFileError:  # missing, or a FIFO, a device, a huge file: load_issue says so
                h.update(b"\0missing" if not part.exists() else b"\0unreadable")
        return h.hexdigest()
