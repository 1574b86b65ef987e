"""The exceptions the core raises; each edge (CLI, web) turns them into a message for a person."""

from __future__ import annotations

from pathlib import Path


class NewsletterError(Exception):
    """A failure the user can act on: shown as one line, never as a traceback."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"


class ConfigError(NewsletterError):
    """newsletter.toml is missing or invalid."""


class WorkspaceError(NewsletterError):
    """The workspace cannot be found or a path in it is wrong."""


class StoreError(NewsletterError):
    """The database cannot be opened, is locked, or refused an operation."""


class SchemaVersionError(StoreError):
    """The database was made by a newer version of newsletter."""


class ImportFileError(NewsletterError):
    """A subscriber CSV file cannot be read at all (the database is left unchanged)."""


class SubscriberError(NewsletterError):
    """A subscriber command cannot be carried out (unknown address, suppressed address…)."""


# the editor's files


class IssueFileError(NewsletterError):
    """An issue file that must not be read: not a regular file, or over the size limit."""
