"""The report for other programs: the per-issue (or per-period) rows as CSV for a
spreadsheet, and the whole report as JSON. Files are written atomically."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from newsletter.build.output import atomic_text
from newsletter.reports.overview import RATES, UNSUBSCRIBE_ROUTES, Report

COUNTS = (
    "issues",
    "recipients",
    "sent",
    "delivered",
    "opened",
    "machine_opened",
    "clickers",
    "clicks",
    "hard_bounces",
    "soft_bounces",
    "complaints",
    "unsubscribed",
)
COLUMNS = (
    "period",
    "newsletter",
    "start",
    *COUNTS,
    *(f"unsubscribed_{r.replace('-', '_')}" for r in UNSUBSCRIBE_ROUTES),
    *RATES,
)


def rows(report: Report) -> list[dict[str, Any]]:
    out = []
    for r in report.rows:
        data = r.to_json()
        row = {k: data[k] for k in ("period", "newsletter", "start", *COUNTS)}
        for route in UNSUBSCRIBE_ROUTES:
            row[f"unsubscribed_{route.replace('-', '_')}"] = r.unsubscribes.get(route, 0)
        for name in RATES:
            rate = data[name]
            row[name] = "" if rate is None else f"{rate:.4f}"
        out.append(row)
    return out


def write_csv(report: Report, path: Path) -> None:
    with atomic_text(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows(report))


def to_json(report: Report) -> dict[str, object]:
    return report.to_json()
