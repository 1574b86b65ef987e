"""`newsletter subscribers import`: a CSV file into the store, in one transaction.

Rows are read as a stream and written in batches, so a million rows take flat memory.
Bad rows are reported (line and reason) and do not stop the good ones; a file that cannot
be read at all (not UTF-8, no email column, a NUL byte, a huge field) stops the import and
leaves the database as it was. Consent is kept: nobody who unsubscribed is resubscribed
unless asked (`resubscribe`), and a suppressed address is never added.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from newsletter.audience import addresses
from newsletter.audience.csvformat import Columns, FormatError, Row, RowError, neutralise
from newsletter.build.output import atomic_write
from newsletter.errors import ImportFileError
from newsletter.store import Connection, Store
from newsletter.store import people as q

BATCH = 5000
Progress = Callable[[int, int], None]  # (bytes read, file size)


@dataclass
class Rejected:
    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    path: Path
    dry_run: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    suppressed: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    skipped_rows: list[Rejected] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped, {len(self.rejected)} rejected, {self.suppressed} suppressed"
            + (f" (dry run: nothing {verb} saved)" if self.dry_run else "")
        )


class _DryRun(Exception):
    """Raised inside the transaction to roll it back."""


class _Lines:
    """The file's lines decoded one at a time: a decoding error names its line, and the
    bytes read so far drive the progress bar."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.done = 0
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.line += 1
            self.done += len(raw)
            if self.line == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if b"\x00" in raw:
                raise csv.Error("a NUL byte: this looks like a binary file, not CSV")
            yield raw.decode("utf-8")


@dataclass
class _Item:
    line: int
    row: Row
    address: addresses.Address
    newsletter: str | None


class Importer:
    def __init__(
        self,
        store: Store,
        newsletters: set[str],
        *,
        newsletter: str | None = None,
        tier: str | None = None,
        resubscribe: bool = False,
        check_deliverability: bool = False,
        now: dt.datetime | None = None,
    ):
        self.store = store
        self.newsletters = newsletters
        self.newsletter = newsletter
        self.tier = tier
        self.resubscribe = resubscribe
        self.check_deliverability = check_deliverability
        self.now = now or dt.datetime.now(dt.UTC)

    def run(
        self,
        path: Path,
        *,
        dry_run: bool = False,
        rejects: Path | None = None,
        on_progress: Progress | None = None,
    ) -> ImportReport:
        report = ImportReport(path, dry_run=dry_run)
        self.source = f"import:{path.name}"
        try:
            with self.store.begin() as conn:
                self._suppressions_at_start = q.any_suppressed(conn)
                self._added: dict[str, str] = {}
                with q.bulk_load(conn):
                    for batch in self._batches(path, report, on_progress):
                        self._apply(conn, batch, report)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        if rejects is not None:
            self._write_rejects(rejects, report)
        return report

    # -- reading ---------------------------------------------------------------------------

    def _batches(
        self, path: Path, report: ImportReport, on_progress: Progress | None
    ) -> Iterator[list[_Item]]:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"cannot read: {exc.strerror}", path) from None
        size = path.stat().st_size
        lines = _Lines(handle)
        reader = csv.reader(lines)
        with handle:
            try:
                header = next(reader, None)
                if header is None:
                    raise ImportFileError(
                        "the file is empty: the first row must name the columns", path
                    )
                columns = Columns.from_header(header)
                if self.newsletter is None and "newsletter" not in columns.index:
                    raise ImportFileError(
                        "which newsletter? Give --newsletter KEY "
                        "(the file has no newsletter column)",
                        path,
                    )
                batch: list[_Item] = []
                rows = 0
                for row in reader:
                    if not "".join(row).strip():  # blank cells only (6% of the time
                        continue  # went to a generator over the cells)
                    rows += 1
                    item = self._item(reader.line_num, row, columns, report)
                    if item is not None:
                        batch.append(item)
                    if len(batch) >= BATCH:
                        yield batch
                        batch = []
                        if on_progress:
                            on_progress(lines.done, size)
                if rows == 0:
                    raise ImportFileError(
                        "the file has a header and no rows: nothing to import", path
                    )
                yield batch
                if on_progress:
                    on_progress(size, size)
            except UnicodeDecodeError:
                message = "not UTF-8 text (save the file as CSV UTF-8)"
                raise ImportFileError(message, path, lines.line) from None
            except csv.Error as exc:
                raise ImportFileError(f"malformed CSV: {exc}", path, lines.line) from None
            except FormatError as exc:
                raise ImportFileError(str(exc), path, 1) from None

    def _item(
        self, line: int, raw: list[str], columns: Columns, report: ImportReport
    ) -> _Item | None:
        email = columns.get(raw, "email") if len(raw) > columns.index["email"] else ""
        try:
            row = columns.parse(raw)
            address = addresses.parse(row.email, self.check_deliverability)
        except (RowError, addresses.InvalidAddress) as exc:
            report.rejected.append(Rejected(line, email, str(exc)))
            return None
        newsletter = row.newsletter or self.newsletter
        if newsletter is not None and newsletter not in self.newsletters:
            report.rejected.append(
                Rejected(line, email, f"newsletter '{newsletter}' is not configured")
            )
            return None
        if row.tier is None and self.tier is not None:
            row.tier = self.tier
        return _Item(line, row, address, newsletter)

    # -- writing ---------------------------------------------------------------------------

    def _apply(self, conn: Connection, batch: list[_Item], report: ImportReport) -> None:
        """One batch in three steps, in this order: the suppression list wins, then the
        subscribers, then their subscriptions (with the consent history)."""
        if not batch:
            return
        known = q.by_keys(conn, (i.address.key for i in batch))
        outcome: dict[int, str] = {}  # index in batch → added/updated/unchanged/skipped/suppressed
        done, brought = self._keep_suppressions(conn, batch, outcome, report)
        ids, new_people = self._write_subscribers(conn, batch, known, done, outcome)
        self._write_subscriptions(conn, batch, ids, new_people, done, brought, outcome, report)
        for n in range(len(batch)):
            kind = outcome.get(n, "unchanged")
            setattr(report, kind, getattr(report, kind) + 1)

    def _keep_suppressions(
        self, conn: Connection, batch: list[_Item], outcome: dict[int, str], report: ImportReport
    ) -> tuple[set[int], set[int]]:
        """1. The suppression list wins over everything: an address suppressed before is not
        touched; a row that brings its own suppression (a bounce, a blocklisting) is kept as a
        record, and suppressed. Returns the rows fully handled here, and the rows that add a
        suppression."""
        if self._suppressions_at_start:
            blocked = q.suppressed(conn, (h for i in batch for h in i.address.hashes))
        else:  # the list was empty: only this import's own suppressions can match
            blocked = {
                i.address.hash: self._added[i.address.hash]
                for i in batch
                if i.address.hash in self._added
            }
        done: set[int] = set()
        brought: set[int] = set()
        new_suppressions: list[q.Suppression] = []
        before = dict(blocked)
        for n, item in enumerate(batch):
            reason = next((before[h] for h in item.address.hashes if h in before), None)
            if reason is not None:
                done.add(n)
                if item.row.suppress:
                    outcome[n] = "unchanged"
                else:
                    outcome[n] = "skipped"
                    report.skipped_rows.append(
                        Rejected(item.line, item.address.email, f"suppressed ({reason})")
                    )
            elif item.row.suppress:
                brought.add(n)
                if item.address.hash not in blocked:
                    blocked[item.address.hash] = item.row.suppress
                    new_suppressions.append(
                        q.Suppression(item.address.hash, item.row.suppress, self.source, self.now)
                    )
        q.suppress(conn, new_suppressions)
        self._added.update((r.email_hash, r.reason) for r in new_suppressions)
        return done, brought

    def _write_subscribers(
        self,
        conn: Connection,
        batch: list[_Item],
        known: dict[str, q.SubscriberRow],
        done: set[int],
        outcome: dict[int, str],
    ) -> tuple[dict[str, int], set[int]]:
        """2. Subscribers: insert the new, update what changed (later rows win). Returns the
        id of every address in the batch (by key), and the ids inserted."""
        now = self.now
        inserts: dict[str, dict[str, Any]] = {}
        updates: dict[int, dict[str, Any]] = {}
        for n, item in enumerate(batch):
            if n in done:
                continue
            key, row = item.address.key, item.row
            person = known.get(key)
            if person is None:
                if key not in inserts:
                    inserts[key] = {
                        "email": item.address.email,
                        "email_key": key,
                        "email_hash": item.address.hash,
                        "name": row.name,
                        "tier": row.tier or "free",
                        "source": self.source,
                        "attributes": row.attributes,
                        "created_at": now,
                        "updated_at": now,
                    }
                else:
                    merged = inserts[key]
                    merged["name"] = row.name or merged["name"]
                    merged["tier"] = row.tier or merged["tier"]
                    merged["attributes"] = {**merged["attributes"], **row.attributes}
                continue
            change = updates.get(person.id, {})
            current_name = change.get("name", person.name)
            current_tier = change.get("tier", person.tier)
            current_attributes = change.get("attributes", person.attributes)
            if row.name and row.name != current_name:
                change["name"] = row.name
            if row.tier and row.tier != current_tier:
                change["tier"] = row.tier
            if row.attributes and {**current_attributes, **row.attributes} != current_attributes:
                change["attributes"] = {**current_attributes, **row.attributes}
            if change:
                change.update(b_id=person.id, updated_at=now)
                updates[person.id] = change
                outcome[n] = "updated"
        ids = {key: person.id for key, person in known.items()}
        for record, new_id in zip(inserts.values(), q.reserve_ids(conn, len(inserts)), strict=True):
            record["id"] = ids[record["email_key"]] = new_id
        q.insert_subscribers(conn, list(inserts.values()))
        q.update_subscribers(conn, list(updates.values()))
        return ids, {ids[k] for k in inserts}

    def _write_subscriptions(
        self,
        conn: Connection,
        batch: list[_Item],
        ids: dict[str, int],
        new_people: set[int],
        done: set[int],
        brought: set[int],
        outcome: dict[int, str],
        report: ImportReport,
    ) -> None:
        """3. Subscriptions: consent is kept (nobody who unsubscribed is resubscribed unless
        asked; subscribed is never downgraded to pending), and every change is recorded in
        the consent history with the suppressions the rows brought."""
        now = self.now
        events: list[q.ConsentEvent] = []
        current = q.statuses(conn, set(ids.values()) - new_people)  # the new have none
        sub_inserts: dict[tuple[int, str], dict[str, Any]] = {}
        sub_updates: dict[tuple[int, str], dict[str, Any]] = {}
        for n, item in enumerate(batch):
            if n in done:
                continue
            person_id = ids[item.address.key]
            if item.newsletter is None:
                outcome.setdefault(n, "added" if person_id in new_people else "unchanged")
                continue
            slot = (person_id, item.newsletter)
            was, want = current.get(slot), item.row.status
            if was is None:
                record = {
                    "subscriber_id": person_id,
                    "newsletter": item.newsletter,
                    "status": want,
                    "method": "import",
                    "created_at": now,
                    "updated_at": now,
                    "subscribed_at": now if want == "subscribed" else None,
                    "unsubscribed_at": now if want == "unsubscribed" else None,
                }
                sub_inserts[slot] = record
                current[slot] = want
                events.append(self._event(item, person_id, want))
                outcome[n] = "added"
                continue
            if was == want or (was == "subscribed" and want == "pending"):
                outcome.setdefault(n, "unchanged")
                continue
            if was == "unsubscribed" and not self.resubscribe:
                outcome[n] = "skipped"
                report.skipped_rows.append(
                    Rejected(
                        item.line,
                        item.address.email,
                        f"unsubscribed from {item.newsletter} (use --resubscribe)",
                    )
                )
                continue
            change = {
                "status": want,
                "method": "import",
                "updated_at": now,
                "subscribed_at": now if want == "subscribed" else None,
                "unsubscribed_at": now if want == "unsubscribed" else None,
            }
            if slot in sub_inserts:
                sub_inserts[slot].update(change)
            else:
                sub_updates[slot] = {"b_id": person_id, "b_newsletter": item.newsletter, **change}
            current[slot] = want
            events.append(self._event(item, person_id, want))
            outcome[n] = "updated"
        for n in brought:
            item = batch[n]
            events.append(
                self._event(item, ids[item.address.key], "suppressed", item.row.suppress or "")
            )
            outcome[n] = "suppressed"
        q.insert_subscriptions(conn, list(sub_inserts.values()))
        q.update_subscriptions(conn, list(sub_updates.values()))
        q.record(conn, events)

    def _event(
        self, item: _Item, subscriber_id: int | None, action: str, detail: str = ""
    ) -> q.ConsentEvent:
        where = f"{self.source} line {item.line}"
        return q.ConsentEvent(
            item.address.hash,
            subscriber_id,
            item.newsletter,
            action,
            "import",
            self.now,
            f"{where}: {detail}" if detail else where,
        )

    @staticmethod
    def _write_rejects(path: Path, report: ImportReport) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "email", "reason"])
        for r in report.rejected:  # the cells a spreadsheet would run, made inert as in export
            writer.writerow([r.line, neutralise(r.email), neutralise(r.reason)])
        atomic_write(path, buffer.getvalue().encode("utf-8"))
