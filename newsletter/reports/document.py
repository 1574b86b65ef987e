"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no script,
no font, no image or link to fetch (its Content-Security-Policy forbids any), so it can be
mailed, archived or opened offline. Every chart has its numbers in a table under it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.build.output import atomic_write
from newsletter.reports import charts
from newsletter.reports.overview import Report
from newsletter.reports.tables import pct

TEMPLATE = "reports/report.html.j2"


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str  # the accessible name of the SVG: what it shows, in a sentence
    svg: str


def _charts(report: Report) -> dict[str, list[Chart]]:
    found: dict[str, list[Chart]] = {"sends": [], "health": [], "stories": [], "groups": []}
    rows = [r for r in report.rows]
    for name in sorted({r.newsletter for r in rows}):
        mine = [r for r in rows if r.newsletter == name]
        series = [
            charts.Series("human opens", [r.open_rate for r in mine]),
            charts.Series("clicks", [r.click_rate for r in mine]),
            charts.Series("click-to-open", [r.click_to_open_rate for r in mine]),
        ]
        title = f"{name}: rates per {report.by} (against delivered)"
        found["sends"].append(
            Chart(
                f"rates-{name}",
                title,
                f"Line chart of {name}'s human open, click and click-to-open rates per "
                f"{report.by}; the numbers are in the table below.",
                charts.lines(title, [r.start for r in mine], series),
            )
        )
    for name in sorted({h.newsletter for h in report.health}):
        mine_h = [h for h in report.health if h.newsletter == name]
        title = f"{name}: joined and left per period, and the net change"
        found["health"].append(
            Chart(
                f"growth-{name}",
                title,
                f"Bar chart of the people who joined (up) and left (down) {name} per period, "
                "with the net change as a line; the numbers are in the table below.",
                charts.growth(
                    title,
                    [h.period for h in mine_h],
                    [sum(h.joined.values()) for h in mine_h],
                    [sum(h.left.values()) for h in mine_h],
                ),
            )
        )
    if report.top_stories:
        title = "Top stories: people who clicked"
        found["stories"].append(
            Chart(
                "top-stories",
                title,
                "Horizontal bar chart of the most clicked stories by the number of people who "
                "clicked; the numbers are in the table below.",
                charts.bars(
                    title,
                    [s.title for s in report.top_stories],
                    [s.clickers for s in report.top_stories],
                    "people who clicked",
                ),
            )
        )
    for key, groups in (("sections", report.sections), ("tags", report.tags)):
        if groups:
            title = f"{key.capitalize()}: click rate of their stories"
            shown = groups[:12]
            found["groups"].append(
                Chart(
                    key,
                    title,
                    f"Horizontal bar chart of each of the {key} by the click rate of its stories "
                    "among delivered; the numbers are in the table below.",
                    charts.bars(
                        title,
                        [g.name for g in shown],
                        [100 * (g.click_rate or 0) for g in shown],
                        "click rate among delivered (%)",
                    ),
                )
            )
    return found


def render(report: Report, publication: str) -> str:
    from markupsafe import Markup

    from newsletter.build.templating import environment

    env = environment(None)
    env.filters["pct"] = pct
    found = _charts(report)
    for group in found.values():
        for index, chart in enumerate(group):
            svg = chart.svg.replace(
                "<svg ",
                f'<svg role="img" aria-label="{Markup.escape(chart.description)}" ',
                1,
            )
            group[index] = Chart(chart.id, chart.title, chart.description, Markup(svg))
    return env.get_template(TEMPLATE).render(
        report=report, publication=publication, charts=found, routes=_routes(report)
    )


def _routes(report: Report) -> dict[str, int]:
    from newsletter.reports.overview import UNSUBSCRIBE_ROUTES

    return {k: sum(r.unsubscribes.get(k, 0) for r in report.rows) for k in UNSUBSCRIBE_ROUTES}


def write_html(report: Report, path: Path, publication: str) -> None:
    atomic_write(path, render(report, publication).encode())
