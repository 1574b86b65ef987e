"""`newsletter bounces process SOURCE`: read the bounce mailbox, classify each message
(`audience.bounces`), apply it to the lists (`audience.delivery`), and file it away.

SOURCE is a Maildir (a folder with cur/, new/, tmp/), an mbox file, or
`imap://user@host[:port]/FOLDER` (`imaps://` the same; TLS unless `[bounces] imap_security`
says otherwise; the password only from NEWSLETTER_IMAP_PASSWORD).
- Each message is recorded by its Message-ID in the same transaction as its events:
  processing a mailbox twice changes nothing, and a crash halfway leaves nothing half-done.
- Processed messages (understood ones, and those processed before) move to the `processed`
  folder of a Maildir or an IMAP account, unless --keep; an mbox is never changed.
- A message that is not understood stays where it is: counted and listed, never deleted.
- --dry-run does everything in transactions it rolls back, and moves nothing: its figures
  are exactly what a real run would report.
"""

from __future__ import annotations

import datetime as dt
import mailbox
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from newsletter.audience import bounces, delivery
from newsletter.config import IMAP_PASSWORD_ENV, Environment
from newsletter.errors import BounceSourceError
from newsletter.store import Store
from newsletter.store import events as eq

PROCESSED = "processed"


class Source(Protocol):
    name: str

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(key, raw bytes) of each message, in the mailbox's order."""
        ...

    def done(self, key: str) -> None:
        """File a processed message away (or leave it, where the source cannot)."""
        ...

    def close(self) -> None: ...


class MaildirSource:
    def __init__(self, path: Path):
        self.name = str(path)
        self.box = mailbox.Maildir(path, factory=None, create=False)
        self._processed: mailbox.Maildir | None = None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.keys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:  # taken by another reader meanwhile
                continue

    def done(self, key: str) -> None:
        if self._processed is None:
            if PROCESSED in self.box.list_folders():
                self._processed = self.box.get_folder(PROCESSED)
            else:
                self._processed = self.box.add_folder(PROCESSED)
        self._processed.add(self.box.get_bytes(key))
        self.box.discard(key)

    def close(self) -> None:
        self.box.close()


class MboxSource:
    """Read only: an mbox file is another program's (the MTA appends to it)."""

    def __init__(self, path: Path):
        self.name = str(path)
        self.box = mailbox.mbox(path, factory=None, create=False)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in self.box.keys():
            yield str(key), self.box.get_bytes(key)

    def done(self, key: str) -> None:
        pass

    def close(self) -> None:
        self.box.close()


class ImapSource:
    """One folder of an IMAP account; messages read with BODY.PEEK (never marked seen) and
    moved by UID to `processed` (created if missing)."""

    def __init__(self, url: str, security: str, password: str):
        import imaplib

        parts = urlsplit(url)
        tls = parts.scheme == "imaps" or security == "tls"
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        user = unquote(parts.username or "")
        host = parts.hostname or ""
        if not user or not host:
            raise BounceSourceError(f"{url}: name the account as imap://USER@HOST/FOLDER")
        port = parts.port or (993 if tls else 143)
        self.name = f"imap://{user}@{host}:{port}/{self.folder}"
        self._error = imaplib.IMAP4.error
        self.imap: imaplib.IMAP4 | None = None
        try:
            if tls:
                self.imap = imaplib.IMAP4_SSL(
                    host, port, ssl_context=ssl.create_default_context(), timeout=60
                )
            else:
                self.imap = imaplib.IMAP4(host, port, timeout=60)
                if security == "starttls":
                    self.imap.starttls(ssl.create_default_context())
            self.imap.login(user, password)
            # asked again after the login: servers (dovecot, Gmail) announce MOVE only then,
            # and imaplib keeps the greeting's list
            status, listed = self.imap.capability()
            words = listed[-1].upper().split() if status == "OK" and listed and listed[-1] else []
            self.moves = b"MOVE" in words  # RFC 6851: atomic, else COPY, \Deleted, EXPUNGE
            status, _ = self.imap.select(_quoted(self.folder))
            if status != "OK":
                self.imap.logout()
                raise BounceSourceError(f"{self.name}: no folder '{self.folder}'")
        except (OSError, imaplib.IMAP4.error) as exc:
            if self.imap is not None:
                self.imap.shutdown()
            raise BounceSourceError(f"{self.name}: {_imap_reason(exc)}") from None
        self.connection: imaplib.IMAP4 = self.imap
        self._has_processed = False
        self._moved = False

    def messages(self) -> Iterator[tuple[str, bytes]]:
        try:
            status, data = self.connection.uid("SEARCH", "ALL")
            uids = data[0].split() if status == "OK" and data and data[0] else []
            for uid in uids:
                status, fetched = self.connection.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next(
                    (part[1] for part in fetched if isinstance(part, tuple) and len(part) > 1),
                    None,
                )
                if status == "OK" and isinstance(raw, bytes):
                    yield uid.decode(), raw
        except (OSError, self._error) as exc:
            raise BounceSourceError(f"{self.name}: {_imap_reason(exc)}") from None

    def done(self, key: str) -> None:
        try:
            if not self._has_processed:
                self.connection.create(PROCESSED)  # NO if it exists: fine
                self._has_processed = True
            if self.moves:
                self.connection.uid("MOVE", key, PROCESSED)
            else:
                self.connection.uid("COPY", key, PROCESSED)
                self.connection.uid("STORE", key, "+FLAGS", "(\\Deleted)")
                self._moved = True
        except (OSError, self._error) as exc:
            raise BounceSourceError(f"{self.name}: {_imap_reason(exc)}") from None

    def close(self) -> None:
        try:
            if self._moved:
                self.connection.expunge()
            self.connection.close()
            self.connection.logout()
        except (OSError, self._error):
            pass


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_reason(exc: BaseException) -> str:
    """The server's words (imaplib gives them as bytes), or the TLS/network error's."""
    text: object = exc.args[0] if len(exc.args) == 1 else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(exc, OSError) or not isinstance(text, str):
        text = str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def open_source(source: str, security: str = "tls") -> Source:
    """A Maildir, an mbox file or an IMAP folder, by what SOURCE is."""
    if source.startswith(("imap://", "imaps://")):
        secret = Environment().imap_password()
        if secret is None:
            raise BounceSourceError(f"{source}: set {IMAP_PASSWORD_ENV} to the account's password")
        return ImapSource(source, security, secret.get_secret_value())
    path = Path(source)
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise BounceSourceError(f"{source}: not a Maildir (no cur/, new/ and tmp/ in it)")
        return MaildirSource(path)
    if path.is_file():
        return MboxSource(path)
    raise BounceSourceError(f"{source}: no such Maildir or mbox file (or imap://USER@HOST/FOLDER)")


@dataclass
class BounceReport:
    source: str
    dry_run: bool
    read: int = 0
    hard: int = 0  # messages reporting a permanent failure
    soft: int = 0  # …a transient one (counted toward the soft-bounce threshold)
    blocked: int = 0  # …a refusal for the message's sake (policy, content)
    delayed: int = 0  # delay warnings: the MTA is still trying
    complaints: int = 0
    reports: int = 0  # feedback reports that are not complaints
    autoreplies: int = 0
    already: int = 0  # processed before (by Message-ID)
    suppressed: int = 0  # addresses newly on the suppression list
    moved: int = 0
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # key, from, subject

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        data = asdict(self)
        data["unknown"] = [{"key": k, "from": f, "subject": s} for k, f, s in self.unknown]
        return data


class _Rollback(Exception):
    """Ends a --dry-run transaction after its work is done, so nothing is kept."""


def process(
    store: Store,
    source: Source,
    classifier: bounces.Classifier,
    soft: delivery.SoftRule,
    *,
    dry_run: bool = False,
    keep: bool = False,
    now: dt.datetime | None = None,
) -> BounceReport:
    report = BounceReport(source.name, dry_run)
    try:
        for key, data in source.messages():
            report.read += 1
            c = classifier.classify(data)
            if c.kind == "unknown":
                report.unknown.append((key, c.sender[:200], c.subject[:200]))
                continue
            when = now or dt.datetime.now(dt.UTC)
            try:
                with store.begin() as conn:
                    fresh = eq.mark_bounce_message(conn, c.message_id, c.kind, c.how, when)
                    recorded = (
                        delivery.apply(conn, delivery.mailbox_events(c, when), when, soft)
                        if fresh
                        else None
                    )
                    if dry_run:
                        raise _Rollback
            except _Rollback:
                pass
            if recorded is None:
                report.already += 1
            else:
                _count(report, c)
                report.suppressed += recorded.suppressed
            if not dry_run and not keep:
                source.done(key)
                report.moved += isinstance(source, MaildirSource | ImapSource)
    finally:
        source.close()
    return report


def _count(report: BounceReport, c: bounces.Classified) -> None:
    if c.kind == "complaint":
        report.complaints += 1
    elif c.kind == "report":
        report.reports += 1
    elif c.kind == "autoreply":
        report.autoreplies += 1
    else:
        worst = min((f.severity for f in c.failures), key=lambda s: delivery.WORST_FIRST[s])
        setattr(report, worst, getattr(report, worst) + 1)
