"""The exceptions the core raises; each edge (CLI, web) turns them into a message for a person."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.problems import Problem


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


class ConfigProblems(ConfigError):
    """Every problem of a config file at once (the CLI lists them all, then says how many)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        first = problems[0]
        super().__init__(first.message, first.path, first.line)


class WorkspaceError(NewsletterError):
    """The workspace cannot be found or a path in it is wrong."""


class StoreError(NewsletterError):
    """The database cannot be opened, is locked, or refused an operation."""


class WriteConflict(StoreError):
    """Two transactions wrote the same unique row at once (two sign-ups of one new address
    on two PostgreSQL workers): the one that lost was rolled back whole, and may be retried."""


class SchemaVersionError(StoreError):
    """The database was made by a newer version of newsletter."""


class ImportFileError(NewsletterError):
    """A subscriber CSV file cannot be read at all (the database is left unchanged)."""


class SubscriberError(NewsletterError):
    """A subscriber command cannot be carried out (unknown address, suppressed address…)."""


class RenderError(NewsletterError):
    """A template or MJML error stops one issue from rendering; `check` reports its Problem
    with the others, and it prints as that Problem does (`path:line: error: message`)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message, problem.path, problem.line)
        self.problem = problem

    def __str__(self) -> str:
        return self.problem.format()


# the audience


class TokenError(NewsletterError):
    """A token that is malformed, tampered with, for another purpose, or expired."""


class SecretError(NewsletterError):
    """No usable secret to sign tokens with."""


class ApiKeyError(NewsletterError):
    """An API key cannot be made or revoked (a bad name or scope, a name taken, no such key)."""


class ApiRefused(NewsletterError):
    """What the API refuses to do for a reason the caller can act on: `code` says which
    (suppressed, unsubscribed, limited, not_found…), `field` names the input at fault."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field


# sending


class SendError(NewsletterError):
    """The send cannot start (or go on)."""


class BackendRefused(NewsletterError):
    """The provider refused a hand-over in a way retrying cannot fix (SendGrid's 400, 401,
    403, 413): nothing of it went out, and the send stops with the provider's own words."""


class MessageError(NewsletterError, ValueError):
    """A message cannot be written (a header line over 998 octets): for one recipient that
    recipient fails and the send goes on; for the whole issue (its subject) nothing starts."""


class DkimError(NewsletterError):
    """A DKIM key cannot be made (`newsletter dkim keygen`: the file exists, the folder is
    not writable)."""


class BounceSourceError(NewsletterError):
    """`bounces process` cannot read its SOURCE: no such Maildir or mbox, an IMAP server
    that cannot be reached or refuses the login, no NEWSLETTER_IMAP_PASSWORD (#14)."""


class WebhookKeyError(NewsletterError):
    """The configured verification key of the provider's event webhook cannot be read."""


# the service


class BodyTooLarge(NewsletterError):
    """A request body is over its endpoint's limit: 413, and the rest is never read."""


class BodyTimeout(NewsletterError):
    """A request body did not arrive in time (a slow or stalled client): 408."""


class DatabaseGone(StoreError):
    """The service's SQLite file is missing or was replaced: it would write into a deleted
    file, so every request is a 503 until the service is restarted on a real database."""


class NoDatabase(StoreError):
    """serve was started on a SQLite file that does not exist: it never creates one."""


# the editor's files


class IssueFileError(NewsletterError):
    """An issue file that must not be read: not a regular file, or over the size limit."""


# drafting and scheduling (#17)


class FeedError(NewsletterError):
    """The publisher's feed cannot be fetched or read (network, HTTP status, not a feed):
    `newsletter draft` writes nothing."""


class ScheduleError(NewsletterError):
    """A schedule setting or an issue's send_at cannot be used (a bad time, an unknown day)."""


# reports


class ReportError(NewsletterError):
    """A report asked for what cannot be: a bad --since, an unknown newsletter."""
