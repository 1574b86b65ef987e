"""The report's charts as inline SVG, drawn by matplotlib (the only module that imports it,
always inside a function: `newsletter --help` and every other command never load it).

Colours are the Okabe-Ito palette, which stays distinct for the common colour-vision
deficiencies, and every series also differs by marker or line style, so no chart depends on
colour alone. Each series is an SVG group with an id `series-<name>` (a bar series one per bar,
`series-<name>-<n>`; a test counts the names); text
stays text (`svg.fonttype = none`), so the page needs no font file, and the output carries
no date, so the same report gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Okabe & Ito (2008), "Color Universal Design"
OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
BLUE, VERMILLION, GREEN, ORANGE, PURPLE = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish green"],
    OKABE_ITO["orange"],
    OKABE_ITO["reddish purple"],
)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "newsletter-report",
            "font.family": "sans-serif",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML


def _slug(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _name(bars: Any, name: str) -> None:
    """Bars are drawn one rectangle each: `series-<name>-<n>`, one name per series."""
    for index, patch in enumerate(bars.patches):
        patch.set_gid(f"series-{name}-{index}")


def _percent_axis(axes: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def lines(
    title: str, days: Sequence[dt.date], series: Sequence[Series], ylabel: str = "rate"
) -> str:
    """Rates over time, one line per series, dates on the x axis."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DayLocator

    figure = _figure(7.5, 3.2)
    axes = figure.add_subplot()
    styles = [(BLUE, "o", "-"), (VERMILLION, "s", "--"), (GREEN, "^", ":"), (PURPLE, "D", "-.")]
    for index, one in enumerate(series):
        colour, marker, style = styles[index % len(styles)]
        xs = [d for d, v in zip(days, one.values, strict=True) if v is not None]
        ys = [v for v in one.values if v is not None]
        (line,) = axes.plot(
            xs, ys, color=colour, marker=marker, linestyle=style, linewidth=2, label=one.name
        )
        line.set_gid(f"series-{_slug(one.name)}")
    span = (max(days) - min(days)).days if days else 0
    if days:  # half a day either side, so no marker sits on the frame (one issue: three days)
        pad = dt.timedelta(days=3 if span == 0 else 0.5)  # on datetimes: a date drops the half
        first, last = (dt.datetime.combine(d, dt.time(0)) for d in (min(days), max(days)))
        axes.set_xlim(first - pad, last + pad)
    # whole days for a short range (an automatic locator would tick hours)
    locator = DayLocator() if span <= 10 else AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    _percent_axis(axes)
    axes.set_ylim(bottom=0)
    axes.set_title(title, loc="left")
    axes.set_xlabel("issue date")
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", color="#dddddd")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(figure)


def growth(title: str, labels: Sequence[str], joined: Sequence[int], left: Sequence[int]) -> str:
    """Joined (up) and left (down) per period as bars, the net change as a line."""
    figure = _figure(7.5, 3.2)
    axes = figure.add_subplot()
    xs = list(range(len(labels)))
    up = axes.bar(xs, joined, color=GREEN, label="joined")
    down = axes.bar(xs, [-n for n in left], color=VERMILLION, hatch="//", label="left")
    _name(up, "joined")
    _name(down, "left")
    net = [j - n for j, n in zip(joined, left, strict=True)]
    (line,) = axes.plot(xs, net, color="#000000", marker="o", linewidth=2, label="net")
    line.set_gid("series-net")
    axes.axhline(0, color="#555555", linewidth=0.8)
    slanted = len(labels) > 8
    axes.set_xticks(xs, labels, rotation=45 if slanted else 0, ha="right" if slanted else "center")
    axes.set_title(title, loc="left")
    axes.set_xlabel("period")
    axes.set_ylabel("people")
    axes.grid(axis="y", color="#dddddd")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(figure)


def bars(title: str, labels: Sequence[str], values: Sequence[float], xlabel: str) -> str:
    """Horizontal bars, the largest on top (top stories, sections, tags)."""
    height = 1.0 + 0.32 * max(len(labels), 1)
    figure = _figure(7.5, height)
    axes = figure.add_subplot()
    ys = list(range(len(labels)))[::-1]
    shown = [label if len(label) <= 60 else label[:59] + "…" for label in labels]
    group = axes.barh(ys, values, color=BLUE)
    _name(group, "values")
    axes.set_yticks(ys, shown)
    axes.set_title(title, loc="left")
    axes.set_xlabel(xlabel)
    axes.grid(axis="x", color="#dddddd")
    return _svg(figure)
