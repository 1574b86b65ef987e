"""Subscriber benchmark: prints figures, asserts nothing.

- import N rows (default 1,000,000) from a generated Mailchimp-style CSV into a fresh SQLite
  database with `newsletter subscribers import`, as a fresh process: time and peak RSS;
- read every recipient of the newsletter through the streamed query: time, and the process's
  resident memory at each tenth of the list (flat: it does not grow with the list).

Usage: .venv/bin/python bench/bench_subscribers.py [--rows 1000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import fresh_process

from newsletter.store import open_store
from newsletter.store import people as q

REPO = Path(__file__).resolve().parent.parent
NEWSLETTER = str(Path(sys.executable).with_name("newsletter"))
FIRST = ["Jane", "Wei", "Zoë", "Arjun", "Chloé", "Tomás", "Hana", "Priya", "Daniel", "Mei"]
LAST = ["Doe", "Chow", "Kwan", "Mehta", "Durand", "Álvarez", "Sato", "Natarajan", "Ho", "Lambert"]


def _rss_mb() -> float:
    """Current resident set size (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME\r\n")
        for i in range(rows):
            out.write(
                f"reader{i}.{rng.randrange(10**6)}@example{i % 97}.com,{rng.choice(FIRST)},"
                f"{rng.choice(LAST)},{rng.randint(1, 5)},2024-01-01 10:00:00\r\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nl-bench-subs-"))
    shutil.copy(REPO / "newsletter.toml", work)
    csv_file = work / "list.csv"
    make_csv(csv_file, args.rows)
    url = args.database_url or f"sqlite:///{work / 'newsletter.db'}"
    os.environ["NEWSLETTER_DATABASE_URL"] = url
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(
        f"{args.rows:,} rows, {csv_file.stat().st_size / 1e6:.0f} MB CSV, "
        f"database {url.split(':')[0]}\n"
    )

    runs = fresh_process(
        [
            NEWSLETTER,
            "-w",
            str(work),
            "subscribers",
            "import",
            str(csv_file),
            "--newsletter",
            "daily",
        ],
        n=1,
        warm_up=False,
    )
    seconds = runs.seconds[0]
    print(
        f"import: {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s), "
        f"CPU {runs.cpu_seconds[0]:.1f} s (user+sys), peak RSS {runs.peak_rss_mb:.0f} MB"
    )

    store = open_store(url)
    start = time.perf_counter()
    count, rss = 0, []
    with store.begin() as conn:
        for _ in q.recipients(conn, "daily"):
            count += 1
            if count % (args.rows // 10 or 1) == 0:
                rss.append(_rss_mb())
    elapsed = time.perf_counter() - start
    store.close()
    print(
        f"recipients streamed: {count:,} in {elapsed:.1f} s ({count / elapsed:,.0f}/s); "
        "process RSS at each tenth: " + ", ".join(f"{r:.0f}" for r in rss) + " MB"
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
