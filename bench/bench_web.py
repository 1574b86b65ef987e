"""Web service load check: prints figures, and fails only if something was lost or doubled.

`newsletter serve` runs as a fresh process (one uvicorn worker, SQLite in WAL) on loopback;
client threads, each with its own keep-alive connection, send:
- one-click unsubscribes (RFC 8058 POSTs, as Gmail sends them) for N different subscribers,
  plus a second POST for a tenth of them (idempotence);
- the SendGrid Event Webhook: E events (default 100,000) in signed batches of B (default
  1,000), with a tenth of the batches delivered twice, as SendGrid's retries do.
Then it counts in the database: every subscriber unsubscribed once, every event stored once.

Usage: .venv/bin/python bench/bench_web.py [--subscribers 10000] [--events 100000]
       [--batch 1000] [--clients 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _util import free_port, report, run_clients  # noqa: E402
from bench_subscribers import make_csv  # noqa: E402

from newsletter.audience.importer import Importer  # noqa: E402
from newsletter.audience.tokens import Signer  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.workspace import Workspace  # noqa: E402
from tests.webhook_signing import WebhookSigner, body_of  # noqa: E402

SECRET = "bench-secret-" + "w" * 40


def server_cpu(pid: int) -> float:
    """The server process's CPU time so far (user + system, Linux): a figure that a busy
    neighbour on the machine disturbs far less than requests/s."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--database-url", help="default: a new SQLite file (PostgreSQL: empty it first)"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nl-bench-web-"))
    shutil.copy(REPO / "newsletter.toml", root)
    url = args.database_url or f"sqlite:///{root / 'newsletter.db'}"
    signer = WebhookSigner()
    env = {
        **os.environ,
        "NEWSLETTER_SECRET": SECRET,
        "NEWSLETTER_DATABASE_URL": url,
        "SENDGRID_WEBHOOK_VERIFICATION_KEY": signer.public_key,
    }
    os.environ.update(env)
    store = open_store(url)
    make_csv(root / "list.csv", args.subscribers)
    Importer(store, set(Workspace(root).config.newsletters), newsletter="daily").run(
        root / "list.csv"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    database = url.split(":")[0].split("+")[0]
    print(f"{args.subscribers:,} subscribers, {database}, {args.clients} client threads\n")

    port = free_port()
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/newsletter"), "-w", str(root), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
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

        # -- one-click unsubscribes --------------------------------------------------------
        tokens = Signer(SECRET)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        ids = list(range(1, args.subscribers + 1))
        jobs = [
            (
                "POST",
                f"/unsubscribe/{tokens.make('unsubscribe', i, 'daily')}",
                b"List-Unsubscribe=One-Click",
                form,
                None,
            )
            for i in ids + ids[::10]
        ]
        cpu = server_cpu(server.pid)
        seconds, latencies, statuses, _ = run_clients(port, jobs, args.clients)
        report("one-click unsubscribe", seconds, latencies, statuses)
        cpu = server_cpu(server.pid) - cpu
        print(f"  server CPU {cpu * 1000 / len(jobs):.2f} ms per request")

        # -- webhook --------------------------------------------------------------------------
        kinds = ["processed", "delivered", "open", "open", "click"]
        batches = []
        for start in range(0, args.events, args.batch):
            events = [
                {
                    "email": f"reader{n}@example.com",
                    "event": kinds[n % len(kinds)],
                    "sg_event_id": f"bench-{n}",
                    "sg_message_id": f"m{n}",
                    "timestamp": 1_747_200_000 + n,
                    "nl_issue": "daily/2025-05-14",
                    "nl_subscriber": str(n % args.subscribers + 1),
                    **({"url": f"https://example.com/{n % 7}"} if n % len(kinds) == 4 else {}),
                    **({"sg_machine_open": n % 3 == 0} if kinds[n % len(kinds)] == "open" else {}),
                }
                for n in range(start, min(start + args.batch, args.events))
            ]
            body = body_of(events)
            headers = signer.headers(body, int(time.time()))
            batches.append(("POST", "/webhooks/sendgrid", body, headers, None))
        retried = batches + batches[::10]
        cpu = server_cpu(server.pid)
        seconds, latencies, statuses, _ = run_clients(port, retried, min(args.clients, 8))
        report(f"webhook, batches of {args.batch:,}", seconds, latencies, statuses)
        cpu = server_cpu(server.pid) - cpu
        received = args.events * len(retried) / len(batches)
        print(
            f"  {received / seconds:,.0f} events/s received ({len(retried)} requests, "
            f"{len(batches[::10])} of them retries of a batch already stored); server CPU "
            f"{cpu * 1000 / len(retried):.1f} ms per request ({received / cpu:,.0f} events "
            "per CPU second)"
        )
    finally:
        server.terminate()
        server.wait(10)

    # -- nothing lost, nothing doubled ------------------------------------------------------
    from sqlalchemy import func, select

    from newsletter.store.schema import consent_events, delivery_events, subscriptions

    with store.begin() as conn:
        unsubscribed = conn.scalar(
            select(func.count()).where(subscriptions.c.status == "unsubscribed")
        )
        history = conn.scalar(select(func.count()).where(consent_events.c.action == "unsubscribed"))
        stored = conn.scalar(select(func.count()).select_from(delivery_events))
        distinct = conn.scalar(select(func.count(func.distinct(delivery_events.c.event_id))))
    print(
        f"\nunsubscribed {unsubscribed:,} of {args.subscribers:,} (history rows {history:,}); "
        f"events stored {stored:,} of {args.events:,} (distinct {distinct:,})"
    )
    ok = unsubscribed == history == args.subscribers and stored == distinct == args.events
    print("nothing lost or doubled" if ok else "LOST OR DOUBLED")
    shutil.rmtree(root)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
