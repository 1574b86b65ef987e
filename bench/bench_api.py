"""Subscriber API load check: prints figures, and fails only if an answer was wrong.

`newsletter serve` runs as a fresh process (one uvicorn worker) on loopback over a database
of S subscribers (default 100,000, imported first); client threads, each with its own
keep-alive connection and the same API key, send:
- GET /api/v1/subscribers?email=… for random subscribers (a key lookup by its hash index,
  then the subscriber by their address key): every answer must be 200 and name them;
- PATCH /api/v1/subscribers/{id} {"tier": …} for random subscribers, premium and back
  (a tier change and its consent-history line): every answer must be 200.
Each prints req/s and the latency's p50 and p99.

Usage: .venv/bin/python bench/bench_api.py [--subscribers 100000] [--gets 5000]
       [--patches 2000] [--clients 8] [--database-url URL]
(PostgreSQL: give an empty database of your own; it is emptied first.)
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _util import Job, free_port, report, run_clients  # noqa: E402
from bench_subscribers import make_csv  # noqa: E402

from newsletter.audience import apikeys  # noqa: E402
from newsletter.audience.importer import Importer  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.workspace import Workspace  # noqa: E402

SECRET = "bench-secret-" + "a" * 40


def empty_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--gets", type=int, default=5_000)
    parser.add_argument("--patches", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nl-bench-api-"))
    shutil.copy(REPO / "newsletter.toml", root)
    url = args.database_url or f"sqlite:///{root / 'newsletter.db'}"
    if url.startswith("postgresql"):
        empty_postgres(url)
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET, "NEWSLETTER_DATABASE_URL": url}
    os.environ.update(env)
    store = open_store(url)
    make_csv(root / "list.csv", args.subscribers)
    started = time.perf_counter()
    Importer(store, set(Workspace(root).config.newsletters), newsletter="daily").run(
        root / "list.csv"
    )
    imported = time.perf_counter() - started
    _, key = apikeys.create(
        store, "bench", ["subscribers:read", "subscribers:write"], now=dt.datetime.now(dt.UTC)
    )
    with (root / "list.csv").open(encoding="utf-8", newline="") as handle:
        emails = [row[0] for row in list(csv.reader(handle))[1:]]
    store.close()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    database = url.split(":")[0].split("+")[0]
    print(
        f"{args.subscribers:,} subscribers ({database}, imported in {imported:.1f} s), "
        f"{args.clients} client threads, one key\n"
    )

    port = free_port()
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/newsletter"), "-w", str(root), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wrong: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        rng = random.Random(7)

        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        warm: list[Job] = [("GET", "/api/v1/subscribers/1", None, headers, b'"id": 1')] * 200
        run_clients(port, warm, args.clients)

        gets: list[Job] = []
        for _ in range(args.gets):
            address = rng.choice(emails)
            path = f"/api/v1/subscribers?email={quote(address)}"
            gets.append(("GET", path, None, headers, address.encode()))
        seconds, latencies, statuses, bad = run_clients(port, gets, args.clients)
        report("GET ?email=", seconds, latencies, statuses)
        wrong += bad

        patches: list[Job] = []
        for n in range(args.patches):
            subscriber = rng.randrange(1, args.subscribers + 1)
            tier = "premium" if n % 2 == 0 else "free"
            body = json.dumps({"tier": tier}).encode()
            expect = f'"tier": "{tier}"'.encode()
            patches.append(("PATCH", f"/api/v1/subscribers/{subscriber}", body, headers, expect))
        seconds, latencies, statuses, bad = run_clients(port, patches, args.clients)
        report("PATCH tier", seconds, latencies, statuses)
        wrong += bad
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)
    if wrong:
        print(f"{len(wrong)} WRONG ANSWERS, the first: {wrong[0]}")
        raise SystemExit(1)
    print("every answer right")


if __name__ == "__main__":
    main()
