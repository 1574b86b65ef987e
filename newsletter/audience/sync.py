"""`subscribers sync`: the paywall's nightly export sets each listed subscriber's tier.

The file is read and checked whole before anything changes (a bad row is an error naming
its line, and nothing is saved, as with `import`); then every change is made in one
transaction, each with the consent history's `tier` line that the API writes too. A
premium subscriber missing from the file stays premium unless `demote_missing` says the
file is complete: an export can be partial, and a silent demotion would hide paid stories
from paying readers. A dry run makes the changes and rolls them back, so its counts are
exactly the run's."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.audience import addresses
from newsletter.audience.csvformat import Columns, FormatError, restore
from newsletter.audience.profiles import set_tier
from newsletter.errors import ImportFileError
from newsletter.store import Store
from newsletter.store import people as q

METHOD = "sync"


@dataclass(frozen=True)
class Change:
    email: str
    line: int | None  # None: not in the file (a demotion by demote_missing)


@dataclass
class SyncReport:
    path: Path
    dry_run: bool
    promoted: list[Change] = field(default_factory=list)
    demoted: list[Change] = field(default_factory=list)
    unchanged: int = 0
    unknown: list[Change] = field(default_factory=list)  # listed, but no subscriber
    missing: list[Change] = field(default_factory=list)  # premium, not listed, kept premium

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        parts = [
            f"{len(self.promoted)} {verb}promoted to premium",
            f"{len(self.demoted)} {verb}demoted to free",
            f"{self.unchanged} unchanged",
            f"{len(self.unknown)} not subscribers",
        ]
        text = ", ".join(parts)
        if self.missing:
            text += (
                f"; {len(self.missing)} premium not in the file, kept premium "
                "(--demote-missing demotes them)"
            )
        return text


@dataclass(frozen=True)
class _Listed:
    line: int
    address: addresses.Address
    tier: str


class _DryRun(Exception):
    """Raised inside the transaction to roll it back."""


def _lines(path: Path) -> Iterator[str]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"cannot read: {exc.strerror}", path) from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if b"\x00" in raw:
                raise ImportFileError(
                    "a NUL byte: this looks like a binary file, not CSV", path, number
                )
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ImportFileError(
                    "not UTF-8 text (save the file as CSV UTF-8)", path, number
                ) from None


def read(path: Path, tier_column: str, premium_values: Iterable[str]) -> list[_Listed]:
    """Every row's address and tier, or ImportFileError naming the first bad line."""
    premium = {v.strip().lower() for v in premium_values if v.strip()}
    reader = csv.reader(_lines(path))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("the file is empty: the first row must name the columns", path)
        try:
            columns = Columns.from_header(header)
        except FormatError as exc:
            raise ImportFileError(str(exc), path, 1) from None
        names = [restore(h).strip().lower() for h in header]
        if tier_column.strip().lower() not in names:
            shown = ", ".join(h.strip() for h in header)
            raise ImportFileError(
                f"no column '{tier_column}' in the header (its columns: {shown})", path, 1
            )
        tier_at = names.index(tier_column.strip().lower())
        email_at = columns.index["email"]
        listed: list[_Listed] = []
        seen: dict[str, _Listed] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ImportFileError(
                    f"the row has {len(row)} fields, the header has {len(header)}", path, line
                )
            raw = restore(row[email_at].strip())
            try:
                address = addresses.parse(raw)
            except addresses.InvalidAddress as exc:
                raise ImportFileError(
                    f"'{raw}' is not a valid address: {exc}", path, line
                ) from None
            value = restore(row[tier_at].strip()).lower()
            item = _Listed(line, address, "premium" if value in premium else "free")
            before = seen.get(address.key)
            if before is not None and before.tier != item.tier:
                raise ImportFileError(
                    f"{raw} is listed twice with different plans (line {before.line} "
                    f"says {before.tier}, this one {item.tier})",
                    path,
                    line,
                )
            seen[address.key] = item
            listed.append(item)
    except csv.Error as exc:
        raise ImportFileError(f"malformed CSV: {exc}", path, reader.line_num) from None
    if not listed:
        raise ImportFileError("the file has a header and no rows: nothing to sync", path)
    return listed


def sync(
    store: Store,
    path: Path,
    *,
    tier_column: str,
    premium_values: Iterable[str] = ("premium",),
    demote_missing: bool = False,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> SyncReport:
    now = now or dt.datetime.now(dt.UTC)
    listed = read(path, tier_column, premium_values)
    report = SyncReport(path, dry_run)
    try:
        with store.begin() as conn:
            people = q.by_keys(conn, [i.address.key for i in listed])
            done: set[int] = set()
            for item in listed:
                person = people.get(item.address.key)
                if person is None:
                    report.unknown.append(Change(item.address.email, item.line))
                    continue
                if person.id in done:
                    continue
                done.add(person.id)
                detail = f"{path.name}:{item.line}"
                if set_tier(conn, person, item.tier, METHOD, now, detail):
                    kind = report.promoted if item.tier == "premium" else report.demoted
                    kind.append(Change(person.email, item.line))
                else:
                    report.unchanged += 1
            for person in q.with_tier(conn, "premium"):
                if person.id in done:
                    continue
                if demote_missing:
                    set_tier(conn, person, "free", METHOD, now, f"not in {path.name}")
                    report.demoted.append(Change(person.email, None))
                else:
                    report.missing.append(Change(person.email, None))
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report
