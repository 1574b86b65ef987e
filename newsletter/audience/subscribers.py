"""The editor's commands on single subscribers and whole lists: add, remove, forget, list,
export, stats.

(Importing a CSV file is `importer`; what a subscriber does by link is `selfservice`.) The
suppression list always wins: a suppressed address is never added, and it stays suppressed
after `forget`, by the hash of its key.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.audience import addresses
from newsletter.audience.csvformat import neutralise
from newsletter.build.output import atomic_text
from newsletter.errors import SubscriberError
from newsletter.model import NAME_MAX
from newsletter.store import Connection, Store
from newsletter.store import people as q

HEADER_BYTES = 65536  # more than any outbox message's headers (each line is at most 998)
EXPORT_COLUMNS = [
    "email",
    "name",
    "tier",
    "newsletter",
    "status",
    "suppressed",
    "source",
    "created_at",
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _address(email: str) -> addresses.Address:
    try:
        return addresses.parse(email)
    except addresses.InvalidAddress as exc:
        raise SubscriberError(f"'{email}' is not a valid address: {exc}") from None


def add(
    store: Store,
    email: str,
    newsletter: str,
    *,
    name: str | None = None,
    tier: str | None = None,
    method: str = "command",
    now: dt.datetime | None = None,
) -> str:
    """Subscribe `email` to `newsletter` (an editor's command: consent given elsewhere).

    Returns what happened: 'added', 'resubscribed', 'updated' or 'unchanged'."""
    now = now or _now()
    address = _address(email)
    if name is not None and len(name) > NAME_MAX:
        raise SubscriberError(f"the name is {len(name)} characters: over {NAME_MAX}")
    with store.begin() as conn:
        reason = next(iter(q.suppressed(conn, address.hashes).values()), None)
        if reason:
            raise SubscriberError(f"{email} is on the suppression list ({reason}): not added")
        person = q.by_key(conn, address.key)
        if person is None:
            person = create(conn, address, name or "", tier or "free", method, now)
            result = "added"
        else:
            change = {
                k: v
                for k, v in (("name", name), ("tier", tier))
                if v is not None and getattr(person, k) != v
            }
            if change:
                q.update_subscribers(conn, [{"b_id": person.id, "updated_at": now, **change}])
            result = "updated" if change else "unchanged"
        was = q.subscriptions_of(conn, person.id).get(newsletter)
        if was is None or was["status"] != "subscribed":
            q.set_status(
                conn, person.id, newsletter, "subscribed", method, now, existed=was is not None
            )
            q.record(
                conn,
                [q.ConsentEvent(address.hash, person.id, newsletter, "subscribed", method, now)],
            )
            result = "added" if was is None else "resubscribed"
        return result


def create(
    conn: Connection,
    address: addresses.Address,
    name: str,
    tier: str,
    source: str,
    now: dt.datetime,
) -> q.SubscriberRow:
    """Insert a new subscriber (no subscription yet) inside the caller's transaction."""
    row = {
        "id": q.reserve_ids(conn, 1)[0],  # never an erased subscriber's id
        "email": address.email,
        "email_key": address.key,
        "email_hash": address.hash,
        "name": name,
        "tier": tier,
        "source": source,
        "attributes": {},
        "created_at": now,
        "updated_at": now,
    }
    q.insert_subscribers(conn, [row])
    person = q.by_key(conn, address.key)
    assert person is not None
    return person


def remove(
    store: Store,
    email: str,
    newsletter: str | None = None,
    *,
    method: str = "command",
    now: dt.datetime | None = None,
) -> list[str]:
    """Unsubscribe from one newsletter (or all); the record and its history stay.

    Returns the newsletters unsubscribed from."""
    now = now or _now()
    address = _address(email)
    with store.begin() as conn:
        person = q.by_key(conn, address.key)
        if person is None:
            raise SubscriberError(f"no subscriber {email}")
        subs = q.subscriptions_of(conn, person.id)
        if newsletter is not None and newsletter not in subs:
            raise SubscriberError(f"{email} has no subscription to {newsletter}")
        targets = [
            k
            for k, s in sorted(subs.items())
            if (newsletter in (None, k)) and s["status"] != "unsubscribed"
        ]
        q.unsubscribe(conn, person.id, address.hash, targets, method, now)
        return targets


@dataclass(frozen=True)
class Forgotten:
    deleted: bool  # a subscriber record was deleted (else none was held)
    outbox_files: int  # messages addressed to them removed from the outbox


def forget(
    store: Store,
    email: str,
    *,
    outbox: Path | None = None,
    method: str = "command",
    now: dt.datetime | None = None,
) -> Forgotten:
    """Erase: personal data deleted; the hash stays on the suppression list so that no later
    import can bring the address back. The `outbox` folder (a delivery log of .eml files:
    issues, test sends, notices) loses every message addressed to them, in any case."""
    now = now or _now()
    address = _address(email)
    with store.begin() as conn:
        person = q.by_key(conn, address.key)
        if person is not None:
            q.delete_subscriber(conn, person.id)
        q.suppress(conn, [q.Suppression(address.hash, "erased", method, now)])
        q.record(conn, [q.ConsentEvent(address.hash, None, None, "erased", method, now)])
    removed = 0
    for path in addressed_to(outbox, address.key) if outbox is not None else []:
        path.unlink(missing_ok=True)
        removed += 1
    return Forgotten(person is not None, removed)


def addressed_to(outbox: Path, key: str) -> Iterator[Path]:
    """The outbox's files whose To names the address with this key. Files are named by
    subscriber id or by notice, so the To header is what says whose a message is."""
    from email.parser import HeaderParser
    from email.utils import getaddresses

    if not outbox.is_dir():
        return
    for path in sorted(outbox.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as handle:  # the headers are at the start
            start = handle.read(HEADER_BYTES)
        head = start.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        headers = HeaderParser().parsestr(head.decode("utf-8", "replace"), headersonly=True)
        for _, email in getaddresses(headers.get_all("To", [])):
            try:
                if email and addresses.parse(email).key == key:
                    yield path
                    break
            except addresses.InvalidAddress:
                continue


@dataclass
class Listed:
    email: str
    name: str
    tier: str
    suppressed: str | None
    newsletters: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "tier": self.tier,
            "suppressed": self.suppressed,
            "newsletters": self.newsletters,
        }


def listing(
    store: Store, newsletter: str | None = None, status: str | None = None
) -> Iterator[Listed]:
    """Subscribers with their statuses, in address order; status may be 'suppressed'."""
    with store.begin() as conn:
        current: Listed | None = None
        for person, key, state, reason in q.all_rows(conn):
            if current is None or current.email != person.email:
                if current is not None and _matches(current, newsletter, status):
                    yield current
                current = Listed(person.email, person.name, person.tier, reason)
            if key is not None and state is not None:
                current.newsletters[key] = state
        if current is not None and _matches(current, newsletter, status):
            yield current


def _matches(entry: Listed, newsletter: str | None, status: str | None) -> bool:
    if newsletter is not None and newsletter not in entry.newsletters:
        return False
    if status == "suppressed":
        return entry.suppressed is not None
    if status is None:
        return True
    states = [entry.newsletters[newsletter]] if newsletter else list(entry.newsletters.values())
    return status in states and entry.suppressed is None


def export(store: Store, path: Path) -> int:
    """Every subscriber with their per-newsletter status, tier and suppression, as a CSV that
    imports back into the same lists. Formula-like cells are neutralised. Returns rows written."""
    count = 0
    with store.begin() as conn, atomic_text(path) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for person, key, state, reason in q.all_rows(conn):
            cells = [
                person.email,
                person.name,
                person.tier,
                key or "",
                state or "",
                reason or "",
                person.source,
                person.created_at.isoformat(),
            ]
            writer.writerow([neutralise(c) for c in cells])
            count += 1
    return count


@dataclass(frozen=True)
class StatsRow:
    newsletter: str
    tier: str
    subscribed: int = 0
    pending: int = 0
    unsubscribed: int = 0
    suppressed: int = 0


def stats(store: Store) -> list[StatsRow]:
    """Per newsletter and tier. A suppressed subscriber counts as suppressed, not subscribed."""
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with store.begin() as conn:
        for newsletter, tier, status, is_suppressed, count in q.counts(conn):
            table[(newsletter, tier)]["suppressed" if is_suppressed else status] += count
    return [StatsRow(nl, tier, **dict(values)) for (nl, tier), values in sorted(table.items())]
