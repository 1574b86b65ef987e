"""Where things live in a publication's repository: config, issues, templates, build output."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from newsletter.config import CONFIG_FILE, DATABASE_URL_ENV, Config, Environment, load_config
from newsletter.errors import IssueFileError, WorkspaceError

ISSUE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$")
# the biggest issue file read: a long daily is 30 KB; the field limits (issuefile) allow less
MAX_ISSUE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
        """The nearest directory at or above `start` that holds a newsletter.toml."""
        here = (start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / CONFIG_FILE).is_file():
                return cls(candidate)
        raise WorkspaceError(
            f"no {CONFIG_FILE} in {here} or above (run 'newsletter init DIR' to start one)"
        )

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def outbox_dir(self) -> Path:
        """Where the outbox backend writes: <newsletter>/<date>/ per issue, notices/."""
        return self.root / "outbox"

    @property
    def database_url(self) -> str:
        """NEWSLETTER_DATABASE_URL if set (keeps a password out of the config), else the
        config's `database`; a relative SQLite path is relative to the workspace."""
        url = Environment().database_url() or self.config.database
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            path = url[len(prefix) :]
            if path.split("?", 1)[0] not in ("", ":memory:"):  # options may follow the file
                url = prefix + str(self.root / path)
        return url

    @property
    def database_setting(self) -> str:
        """Where database_url comes from, for the errors that ask to fix it."""
        if Environment().database_url():
            return DATABASE_URL_ENV
        return f"database in {CONFIG_FILE}"

    def issue_path(self, newsletter: str, date: dt.date) -> Path:
        return self.issues_dir / newsletter / f"{date.isoformat()}.md"

    def resolve_issue(self, ref: str) -> Path:
        """An issue named on the command line: a file, or `<newsletter>/<date>`."""
        path = Path(ref)
        if path.suffix == ".md":
            return path
        parts = ref.strip("/").split("/")
        if len(parts) == 2:
            try:
                return self.issue_path(parts[0], dt.date.fromisoformat(parts[1]))
            except ValueError:
                pass
        raise WorkspaceError(
            f"'{ref}' is neither an issue file nor <newsletter>/<date> (like daily/2025-05-14)"
        )

    def display(self, path: Path) -> str:
        """A path as the editor would type it: relative to the workspace when inside it (a
        symbolic link is shown as itself, not as what it points to)."""
        try:
            return str((path.parent.resolve() / path.name).relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def issue_files(self, paths: list[Path] | None = None) -> list[Path]:
        """Issue files named by `paths` (files or directories), or all of them, sorted."""
        if not paths:
            paths = [self.issues_dir]
        found: set[Path] = set()
        for path in paths:
            # special files (a FIFO, a link to a device) are listed too: the loader refuses
            # each with one line instead of their being skipped without a word
            if path.is_dir():
                found.update(
                    p for p in path.rglob("*.md") if ISSUE_NAME.match(p.name) and not p.is_dir()
                )
            elif path.exists() or path.is_symlink():
                found.add(path)
            else:
                raise WorkspaceError("no such file or directory", path)
        return sorted(found, key=lambda p: (p.parent.name, p.name))


def read_issue_bytes(path: Path, limit: int = MAX_ISSUE_BYTES) -> bytes:
    """The bytes of an issue file, read only if it is a regular file of at most `limit` bytes:
    a FIFO would block and /dev/zero never ends. IssueFileError says why not."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise IssueFileError(f"cannot read: {exc.strerror}", path) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IssueFileError("not a regular file", path)
        data = handle.read(limit + 1)
    if len(data) > limit:
        size = max(info.st_size, len(data))
        raise IssueFileError(
            f"the file is {size:,} bytes: issue files are limited to {limit:,} bytes", path
        )
    return data


def parse_issue_name(path: Path) -> tuple[str, dt.date] | None:
    """(newsletter, date) from issues/<newsletter>/<YYYY-MM-DD>.md, or None."""
    m = ISSUE_NAME.match(path.name)
    if not m:
        return None
    try:
        return path.parent.name, dt.date.fromisoformat(m.group(1))
    except ValueError:
        return None
