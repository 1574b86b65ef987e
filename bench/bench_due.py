"""The cost of the morning's automation (#17): `newsletter send --due` with nothing due, as
cron runs it every minute (a fresh process on an archive of N dailies), `newsletter schedule`,
and `newsletter draft --dry-run` of a generated feed of F items, in-process; with
`subscribers stats` (also a fresh process that opens the database) as the baseline.

Prints figures; asserts nothing about time."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import fresh_process, timed
from gen_archive import make_workspace

from newsletter.build.draft import draft
from newsletter.workspace import Workspace


def rss(items: int) -> str:
    start = dt.datetime(2025, 5, 16, 6, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    body = []
    for n in range(items):
        when = start - dt.timedelta(minutes=10 * n)
        body.append(
            f"<item><title>Story {n}</title>"
            f"<link>https://news.example/2025/story-{n}?utm_source=rss</link>"
            f"<description><![CDATA[<p>Paragraph <b>one</b> of {n}, "
            f'<a href="/related/{n}">related</a>.</p><p>Two.</p><script>x()</script>]]>'
            f"</description><dc:creator>Writer {n % 7}</dc:creator>"
            f"<category>Section {n % 5}</category>"
            f'<media:content url="https://img.example/{n}.jpg" type="image/jpeg">'
            f"<media:description>Picture {n}</media:description></media:content>"
            f"<pubDate>{when:%a, %d %b %Y %H:%M:%S %z}</pubDate></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Bench</title>'
        + "".join(body)
        + "</channel></rss>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        make_workspace(root, args.issues)
        config = root / "newsletter.toml"
        config.write_text(
            config.read_text().replace(
                "[newsletters.daily]\n",
                '[newsletters.daily]\nsend_time = "06:30"\nsend_days = "weekdays"\n',
            )
        )
        os.environ["NEWSLETTER_DATABASE_URL"] = f"sqlite:///{root / 'n.db'}"
        os.environ["NEWSLETTER_SECRET"] = "bench-secret-" + "z" * 40
        cli = [sys.executable, "-m", "newsletter", "-w", str(root)]
        subprocess.run([*cli, "db", "init"], check=True, capture_output=True)
        os.environ["NEWSLETTER_NOW"] = "2025-05-16T05:00:00+08:00"  # the bench's own clock
        print(f"{args.issues} dailies in the workspace, Python {sys.version.split()[0]}")
        baseline = fresh_process([*cli, "subscribers", "stats"], args.runs)
        print(baseline.line("baseline: subscribers stats, fresh process"))
        print(
            fresh_process([*cli, "send", "--due"], args.runs).line(
                "send --due, nothing due, fresh process"
            )
        )
        print(fresh_process([*cli, "schedule"], args.runs).line("schedule --days 7, fresh process"))
        feed = Path(tmp) / "feed.xml"
        feed.write_text(rss(args.items))
        ws = Workspace(root)
        runs = timed(
            lambda: draft(ws, "daily", dt.date(2025, 5, 19), str(feed), dry_run=True, limit=12),
            args.runs,
        )
        print(runs.line(f"draft --dry-run of a {args.items}-item RSS, in-process"))


if __name__ == "__main__":
    main()
