"""`bounces process` (#14): how fast a bounce mailbox is read.

1. Classifying flufl.bounce's corpus (tests/data/bounces/flufl), in-process: messages/s.
2. `process` of a Maildir holding N bounces (default 10,000: RFC 3464 reports to the VERP
   addresses of N subscribers, a tenth of them soft) into a fresh SQLite database, in-process,
   then the same Maildir again (every message already processed): messages/s for each.

Run: .venv/bin/python bench/bench_bounces.py [--messages N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import mailbox
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "b" * 40
BOUNCES = "bounces@news.example.com"
ISSUE = "daily/2026-01-05"


def _dsn(to: str, recipient: str, status: str, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "MAILER-DAEMON@mx.example.org"
    msg["To"] = to
    msg["Subject"] = "Undelivered Mail Returned to Sender"
    msg["Message-ID"] = f"<bench-{n}@mx.example.org>"
    msg["Date"] = "Mon, 05 Jan 2026 09:00:00 +0000"
    msg.set_content("Your message could not be delivered.")
    msg.make_mixed()
    msg.replace_header(
        "Content-Type", 'multipart/report; report-type=delivery-status; boundary="R"'
    )
    msg.set_boundary("R")
    from email import message_from_string

    msg.attach(
        message_from_string(
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; 550 {status} no such user\n"
        )
    )
    return msg.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from newsletter.audience import mailboxes
    from newsletter.audience.bounces import Classifier
    from newsletter.audience.delivery import SoftRule
    from newsletter.audience.importer import Importer
    from newsletter.audience.tokens import VerpSigner
    from newsletter.store import open_store
    from newsletter.store import people as q

    corpus = [p.read_bytes() for p in sorted((ROOT / "tests/data/bounces/flufl").glob("*.txt"))]
    classifier = Classifier()
    start = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for data in corpus:
            classifier.classify(data)
    seconds = time.perf_counter() - start
    print(
        f"classify flufl.bounce's corpus ({len(corpus)} messages x {rounds}): "
        f"{len(corpus) * rounds / seconds:,.0f} messages/s"
    )

    n = args.messages
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        csv = Path(tmp) / "readers.csv"
        csv.write_text("email\n" + "".join(f"reader{i}@example.com\n" for i in range(n)))
        Importer(store, {"daily"}, newsletter="daily", now=dt.datetime.now(dt.UTC)).run(csv)
        with store.begin() as conn:
            people = q.by_keys(conn, [f"reader{i}@example.com" for i in range(n)])
        ids = [people[f"reader{i}@example.com"].id for i in range(n)]
        verp = VerpSigner(SECRET)
        box = mailbox.Maildir(Path(tmp) / "Maildir", create=True)
        for i, sid in enumerate(ids):
            status = "4.2.2" if i % 10 == 0 else "5.1.1"
            box.add(_dsn(verp.address(BOUNCES, ISSUE, sid), f"reader{i}@example.com", status, i))
        real = Classifier(verp, BOUNCES)
        for label in ("first run", "again (all processed before)"):
            source = mailboxes.MaildirSource(Path(tmp) / "Maildir")
            start = time.perf_counter()
            report = mailboxes.process(store, source, real, SoftRule(), keep=True)
            seconds = time.perf_counter() - start
            print(
                f"bounces process, Maildir of {n:,} reports, SQLite, {label}: "
                f"{seconds:.2f} s, {n / seconds:,.0f} messages/s "
                f"(hard {report.hard:,}, soft {report.soft:,}, already {report.already:,}, "
                f"suppressed {report.suppressed:,})"
            )
        store.close()


if __name__ == "__main__":
    main()
