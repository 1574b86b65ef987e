"""Report benchmark: prints figures, asserts nothing.

Generates a year of history (deterministic seed): SUBSCRIBERS subscribers (default 100,000)
on three newsletters with their consent history (sign-ups, imports, API sign-ups,
unsubscribes by every route, suppressions), ISSUES sends with their send journal, EVENTS
delivery events (default 1,000,000: deliveries, human and machine opens, clicks on the
stories' links with UTM variants, bounces, complaints) and each issue's manifest with its
stories. Then times `newsletter report` over the whole year as a fresh process (wall time,
peak RSS), in the terminal and with `--html` (the charts), on SQLite and, with
--database-url, on PostgreSQL.

THE DATABASE GIVEN IS EMPTIED FIRST (PostgreSQL: its public schema is dropped).

Usage: .venv/bin/python bench/bench_report.py [--events 1000000] [--subscribers 100000]
       [--database-url postgresql+psycopg://postgres@127.0.0.1:54329/newsletter_test_x]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _util import fresh_process  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from newsletter.build.attribution import normalise  # noqa: E402
from newsletter.model import hash_key  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.store.schema import (  # noqa: E402
    consent_events,
    delivery_events,
    send_journal,
    sends,
    subscribers,
    subscriptions,
)

NEWSLETTER = str(Path(sys.executable).with_name("newsletter"))
START = dt.datetime(2025, 1, 6, 6, 0, tzinfo=dt.UTC)  # a Monday
LISTS = {"daily": 1.0, "weekly": 0.3, "green": 0.2}  # share of subscribers on each
SECTIONS = ["Trade", "Markets", "Property", "Economy", "Companies", "Energy", "Tech"]
AUTHORS = ["Mei Ling Chow", "Arjun Mehta", "Sophie Lambert", "Daniel Ho", "Hana Sato"]
TAGS = ["trade", "shipping", "property", "debt", "rates", "environment", "ipo", "china"]
CHUNK = 20_000


def _chunks(conn, table, rows) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[start : start + CHUNK])


def empty(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def issues_plan(target_events: int, people: int) -> list[tuple[str, dt.datetime, int]]:
    """(issue, started_at, recipients): dailies on weekdays, the weekly on Saturdays, green
    fortnightly, until the events reach the target (about 1.65 events per recipient)."""
    plan = []
    per_recipient = 1.65  # measured: deliveries, opens, clicks and bounces per recipient
    total = 0.0
    day = START
    while total < target_events:
        for key, share in LISTS.items():
            weekday = day.weekday()
            due = (
                (key == "daily" and weekday < 5)
                or (key == "weekly" and weekday == 5)
                or (key == "green" and weekday == 2 and day.isocalendar()[1] % 2 == 0)
            )
            if due:
                recipients = int(min(people * share, 4_000))
                plan.append((f"{key}/{day.date().isoformat()}", day, recipients))
                total += recipients * per_recipient
        day += dt.timedelta(days=1)
    return plan


def generate(url: str, work: Path, events_target: int, people: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    store = open_store(url)
    now = START - dt.timedelta(days=30)
    year = dt.timedelta(days=365)
    subs, subscr, consent = [], [], []
    tiers = []
    for i in range(people):
        key = f"reader{i}@example{i % 97}.com"
        tier = "premium" if i % 10 == 0 else "free"
        tiers.append(tier)
        subs.append(
            {
                "id": i + 1,
                "email": key,
                "email_key": key,
                "email_hash": hash_key(key),
                "name": f"Reader {i}",
                "tier": tier,
                "source": "bench",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
        )
        for nl, share in LISTS.items():
            if rng.random() >= share:
                continue
            joined = START - dt.timedelta(days=60) + rng.random() * (year + dt.timedelta(days=60))
            method = rng.choice(["import", "double-opt-in", "double-opt-in", "api:crm", "command"])
            status = "subscribed"
            consent.append(
                {
                    "email_hash": hash_key(key),
                    "subscriber_id": i + 1,
                    "newsletter": nl,
                    "action": "subscribed",
                    "method": method,
                    "detail": "",
                    "at": joined,
                }
            )
            if rng.random() < 0.08:  # leaves later, by one of the routes
                left = joined + rng.random() * dt.timedelta(days=120)
                consent.append(
                    {
                        "email_hash": hash_key(key),
                        "subscriber_id": i + 1,
                        "newsletter": nl,
                        "action": "unsubscribed",
                        "method": rng.choice(
                            ["one-click", "one-click", "preferences", "api:crm", "webhook"]
                        ),
                        "detail": "",
                        "at": left,
                    }
                )
                status = "unsubscribed"
            subscr.append(
                {
                    "subscriber_id": i + 1,
                    "newsletter": nl,
                    "status": status,
                    "method": method,
                    "created_at": joined,
                    "updated_at": joined,
                    "subscribed_at": joined,
                    "unsubscribed_at": None,
                }
            )
    plan = issues_plan(events_target, people)
    journal, events, manifest_count = [], [], 0
    eid = 0
    for issue, started, recipients in plan:
        nl, date = issue.split("/")
        stories = [
            {
                "key": normalise(f"https://news.example.com/{date}/{nl}-story-{n}"),
                "url": f"https://news.example.com/{date}/{nl}-story-{n}",
                "title": f"Story {n} of {issue}: a headline of the usual length for a news story",
                "position": n,
                "section": rng.choice(SECTIONS),
                "byline": rng.choice(AUTHORS),
                "tags": rng.sample(TAGS, 2),
                "paywalled": n % 3 == 0,
            }
            for n in range(1, 11)
        ]
        folder = work / "build" / nl / date
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(
            json.dumps(
                {
                    "newsletter": nl,
                    "date": date,
                    "status": "ready",
                    "subject": issue,
                    "preheader": None,
                    "title": nl,
                    "web_url": "",
                    "article_count": 10,
                    "input_hash": "bench",
                    "articles": stories,
                }
            )
        )
        manifest_count += 1
        ids = rng.sample(range(1, people + 1), recipients)
        for sid in ids:
            journal.append(
                {"issue": issue, "subscriber_id": sid, "state": "sent", "updated_at": started}
            )

            def event(
                kind: str,
                issue: str = issue,
                sid: int = sid,
                started: dt.datetime = started,
                **extra: object,
            ) -> None:
                nonlocal eid
                eid += 1
                events.append(
                    {
                        "event_id": f"e{eid}",
                        "event": kind,
                        "issue": issue,
                        "subscriber_id": sid,
                        "email_hash": None,
                        "machine": bool(extra.get("machine", False)),
                        "url": str(extra.get("url", "")),
                        "detail": str(extra.get("detail", "")),
                        "provider_id": "",
                        "occurred_at": started + dt.timedelta(minutes=rng.randrange(1, 2000)),
                        "received_at": started,
                    }
                )

            roll = rng.random()
            if roll < 0.01:
                event("bounce", detail="bounce")
                continue
            if roll < 0.02:
                event("bounce", detail="blocked")
                continue
            event("delivered")
            if rng.random() < 0.15:
                event("open", machine=True)
            elif rng.random() < 0.40:
                event("open")
                if rng.random() < 0.3:
                    event("open")
                if rng.random() < 0.35:
                    story = stories[min(int(rng.expovariate(0.4)), 9)]
                    suffix = "?utm_source=newsletter&utm_medium=email" if rng.random() < 0.8 else ""
                    event("click", url=story["url"] + suffix)
            if rng.random() < 0.001:
                event("spamreport")
    with store.begin() as conn:
        _chunks(conn, subscribers, subs)
        _chunks(conn, subscriptions, subscr)
        _chunks(conn, consent_events, consent)
        conn.execute(
            insert(sends),
            [
                {
                    "issue": i,
                    "newsletter": i.split("/")[0],
                    "backend": "sendgrid",
                    "recipients": r,
                    "started_at": s,
                }
                for i, s, r in plan
            ],
        )
        _chunks(conn, send_journal, journal)
        _chunks(conn, delivery_events, events)
    store.close()
    print(
        f"generated {len(subs):,} subscribers, {len(consent):,} consent events, {len(plan)} issues "
        f"({manifest_count} manifests), {len(journal):,} journal rows, {len(events):,} delivery events"
    )
    return len(events)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a new SQLite file (EMPTIED FIRST)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    parser.add_argument("--generate-into", help=argparse.SUPPRESS)  # the child that generates
    args = parser.parse_args()
    if args.generate_into:
        generate(args.database_url, Path(args.generate_into), args.events, args.subscribers)
        if args.database_url.startswith("postgresql"):  # as autovacuum would have, live
            engine = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text("VACUUM ANALYZE"))
            engine.dispose()
        return
    work = Path(tempfile.mkdtemp(prefix="nl-bench-report-"))
    shutil.copy(REPO / "newsletter.toml", work)
    url = args.database_url or f"sqlite:///{work / 'newsletter.db'}"
    empty(url)
    os.environ["NEWSLETTER_DATABASE_URL"] = url
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"database {url.split(':')[0]}")
    started = time.perf_counter()
    # in a child process: the generated rows (a GB of Python objects) must not be in the
    # memory the timed processes are forked from (their peak RSS would count it)
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate-into",
            str(work),
            "--database-url",
            url,
            "--events",
            str(args.events),
            "--subscribers",
            str(args.subscribers),
        ],
        check=True,
    )
    print(f"(generated in {time.perf_counter() - started:.0f} s)\n")
    base = [NEWSLETTER, "-w", str(work), "report", "--since", "2025-01-01", "--until", "2025-12-31"]
    for label, extra in (
        ("report, terminal tables, a year by issue", []),
        ("report --by week", ["--by", "week"]),
        (
            "report --html (charts) --csv",
            ["--html", str(work / "r.html"), "--csv", str(work / "r.csv")],
        ),
    ):
        runs = fresh_process(base + extra, n=args.runs, warm_up=True)
        print(runs.line(label))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
