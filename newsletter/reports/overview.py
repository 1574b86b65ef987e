"""`newsletter report`: per issue (or week, or month) what happened to the sends, how each
list grew or shrank, which stories, sections, tags and authors were read, and how many
readers two newsletters share. Assembled from `store.reports`' aggregations (a few hundred
rows whatever the history's size) into one typed `Report` that the CLI prints, `exports`
writes as CSV or JSON and `document` renders as HTML.

Rates are against *delivered*, not sent: a bounce is not a reader who ignored the issue.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from newsletter.errors import ReportError
from newsletter.reports.stories import StoryStats, attribute
from newsletter.store import Store
from newsletter.store import reports as sr
from newsletter.workspace import Workspace

By = Literal["issue", "week", "month"]
DEFAULT_DAYS = 90
TOP_STORIES = 10
UNSUBSCRIBE_ROUTES = ("one-click", "page", "api", "complaint", "provider", "editor", "other")


def route_of(method: str) -> str:
    """The route of an unsubscribe, from the consent history's method."""
    if method == "one-click":
        return "one-click"  # RFC 8058: the mail app's button
    if method in ("page", "preferences"):  # the unsubscribe page's button, the preferences page
        return "page"
    if method == "api" or method.startswith("api:"):
        return "api"
    if method == "webhook":
        return "provider"  # SendGrid's own unsubscribe link or group unsubscribe
    if method == "command":
        return "editor"
    return "other"


def source_of(method: str) -> str:
    """Where a subscriber joined from, from the consent history's method."""
    if method in ("double-opt-in", "web"):
        return "sign-up form"
    if method == "api" or method.startswith("api:"):
        return "api"
    if method == "import":
        return "import"
    if method == "command":
        return "editor"
    return "other"


def reason_of(change: sr.ListChange) -> str:
    """Why a subscriber left: the unsubscribe's route, or bounce, complaint, erased."""
    if change.action == "unsubscribed":
        return route_of(change.method)
    if change.action == "suppressed":
        return change.reason if change.reason in ("bounce", "complaint") else "suppressed"
    if change.action == "erased":
        return "erased"
    return "other"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class IssueRow:
    """One issue, or the sum of a period's issues of one newsletter."""

    period: str  # the issue (daily/2025-05-14), the ISO week (2025-W20) or the month (2025-05)
    newsletter: str
    start: dt.date  # the first issue's date
    issues: int
    recipients: int
    sent: int
    delivered: int
    opened: int  # people, human opens only
    machine_opened: int  # people whose mail app fetched the images (Apple MPP), not readers
    clickers: int
    clicks: int
    hard_bounces: int
    soft_bounces: int  # blocked for now by the receiving server
    complaints: int
    unsubscribes: dict[str, int] = field(default_factory=dict)  # route → people

    @property
    def unsubscribed(self) -> int:
        return sum(self.unsubscribes.values())

    @property
    def delivery_rate(self) -> float | None:
        return _rate(self.delivered, self.sent)

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clickers, self.delivered)

    @property
    def click_to_open_rate(self) -> float | None:
        return _rate(self.clickers, self.opened)

    @property
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribed, self.delivered)

    @property
    def bounce_rate(self) -> float | None:
        return _rate(self.hard_bounces + self.soft_bounces, self.sent)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complaints, self.delivered)

    def add(self, other: IssueRow) -> None:
        for name in (
            "issues recipients sent delivered opened machine_opened clickers clicks "
            "hard_bounces soft_bounces complaints"
        ).split():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for route, n in other.unsubscribes.items():
            self.unsubscribes[route] = self.unsubscribes.get(route, 0) + n

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["unsubscribes"] = {r: self.unsubscribes.get(r, 0) for r in UNSUBSCRIBE_ROUTES}
        data["unsubscribed"] = self.unsubscribed
        for name in RATES:
            data[name] = getattr(self, name)
        return data


RATES = (
    "delivery_rate",
    "open_rate",
    "click_rate",
    "click_to_open_rate",
    "unsubscribe_rate",
    "bounce_rate",
    "complaint_rate",
)


@dataclass
class HealthRow:
    """One newsletter's list over one period, from the consent history."""

    newsletter: str
    period: str
    start: dt.date
    end: dt.date  # exclusive
    subscribed_start: int
    subscribed_end: int
    joined: dict[str, int] = field(default_factory=dict)  # source → people
    left: dict[str, int] = field(default_factory=dict)  # reason → people

    @property
    def net(self) -> int:
        return self.subscribed_end - self.subscribed_start

    @property
    def churn_rate(self) -> float | None:
        return _rate(sum(self.left.values()), self.subscribed_start)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.update(
            start=self.start.isoformat(),
            end=self.end.isoformat(),
            joined_total=sum(self.joined.values()),
            left_total=sum(self.left.values()),
            net=self.net,
            churn_rate=self.churn_rate,
        )
        return data


@dataclass(frozen=True)
class Group:
    """A section, tag or author: its stories' readers, with how many issues it was in."""

    name: str
    stories: int
    issues: int
    clickers: int  # the sum over its stories of each story's distinct clickers
    clicks: int
    delivered: int  # the sum over its stories of their issue's delivered

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clickers, self.delivered)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "click_rate": self.click_rate}


@dataclass(frozen=True)
class Overlap:
    newsletter: str
    other: str
    readers: int  # of `newsletter` in the period (human opens or clicks)
    also_read_other: int
    subscribers: int  # of `newsletter` now
    also_subscribed_other: int

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "readers_share": _rate(self.also_read_other, self.readers),
            "subscribers_share": _rate(self.also_subscribed_other, self.subscribers),
        }


@dataclass
class Report:
    newsletter: str | None
    since: dt.date
    until: dt.date  # inclusive
    by: By
    rows: list[IssueRow]
    health: list[HealthRow]
    top_stories: list[StoryStats]
    sections: list[Group]
    tags: list[Group]
    authors: list[Group]
    overlap: list[Overlap]

    def to_json(self) -> dict[str, object]:
        return {
            "newsletter": self.newsletter,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": self.by,
            "rows": [r.to_json() for r in self.rows],
            "health": [h.to_json() for h in self.health],
            "top_stories": [s.to_json() for s in self.top_stories],
            "sections": [g.to_json() for g in self.sections],
            "tags": [g.to_json() for g in self.tags],
            "authors": [g.to_json() for g in self.authors],
            "overlap": [o.to_json() for o in self.overlap],
        }


def parse_since(text: str, today: dt.date, option: str = "--since") -> dt.date:
    """`90d` (days before today) or a date."""
    found = re.fullmatch(r"(\d{1,5})d", text.strip())
    if found:
        return today - dt.timedelta(days=int(found.group(1)))
    return parse_date(text, option, "a number of days like 90d or a date like 2025-05-01")


def parse_date(text: str, option: str, expected: str = "a date like 2025-05-31") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{option} {text!r}: expected {expected}") from None


def period_of(day: dt.date, by: By) -> tuple[str, dt.date, dt.date]:
    """The period holding `day`: its label, first day and the day after its last."""
    if by == "month":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        return f"{start:%Y-%m}", start, end
    start = day - dt.timedelta(days=day.weekday())
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}", start, start + dt.timedelta(days=7)


def _issue_date(issue: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(issue.partition("/")[2])
    except ValueError:
        return None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def build_report(
    store: Store,
    workspace: Workspace | None,
    *,
    newsletter: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    by: By = "issue",
    today: dt.date | None = None,
) -> Report:
    today = today or dt.datetime.now(dt.UTC).date()
    until = until or today
    since = since or until - dt.timedelta(days=DEFAULT_DAYS)
    if since > until:
        raise ReportError(f"--since {since} is after --until {until}")
    if workspace is not None and newsletter is not None:
        known = workspace.config.newsletters
        if newsletter not in known:
            raise ReportError(
                f"--newsletter {newsletter!r}: not in newsletter.toml (one of {', '.join(known)})"
            )
    with store.read() as conn:
        sent = [
            s
            for s in sr.sends_of(conn, newsletter)
            if (d := _issue_date(s.issue)) is not None and since <= d <= until
        ]
        issues = [s.issue for s in sent]
        journal = sr.journal_counts(conn, issues)
        events = sr.event_counts(conn, issues)
        unsubscribes = sr.unsubscribes_by_method(conn, issues)
        changes = sr.list_changes(conn, _midnight(until + dt.timedelta(days=1)), newsletter)
        lists = sorted({s.newsletter for s in sent})
        readers, read_both = sr.readers_overlap(conn, issues, lists)
        subscribed, subscribed_both = sr.subscribers_overlap(conn, lists)

    per_issue = [
        _issue_row(
            s, journal.get(s.issue, {}), events.get(s.issue, {}), unsubscribes.get(s.issue, {})
        )
        for s in sorted(sent, key=lambda s: (_issue_date(s.issue), s.issue))
    ]
    rows = per_issue if by == "issue" else _by_period(per_issue, by)
    delivered = {r.period: r.delivered for r in per_issue}
    clicks = attribute(store, workspace, issues, by_tier=False, delivered=delivered)
    stories = [s for issue in issues for s in clicks.stories.get(issue, [])]
    names = sorted({s.newsletter for s in sent} | {c.newsletter for c in changes})
    overlap = [
        Overlap(
            a,
            b,
            readers.get(a, 0),
            read_both.get((a, b), 0),
            subscribed.get(a, 0),
            subscribed_both.get((a, b), 0),
        )
        for a in names
        for b in names
        if a != b and (read_both.get((a, b)) or subscribed_both.get((a, b)))
    ]
    return Report(
        newsletter=newsletter,
        since=since,
        until=until,
        by=by,
        rows=rows,
        health=_health(changes, since, until, "month" if by == "month" else "week"),
        top_stories=sorted(stories, key=lambda s: (-s.clickers, -s.clicks, s.issue, s.position))[
            :TOP_STORIES
        ],
        sections=_groups(stories, delivered, lambda s: [s.section] if s.section else []),
        tags=_groups(stories, delivered, lambda s: list(s.tags)),
        authors=_groups(stories, delivered, lambda s: [s.byline] if s.byline else []),
        overlap=overlap,
    )


def _issue_row(
    send: sr.SendRow,
    states: dict[str, int],
    events: dict[sr.EventKey, tuple[int, int]],
    unsubscribes: dict[str, int],
) -> IssueRow:
    def people(event: str, machine: bool = False, detail: str = "") -> int:
        return events.get((event, machine, detail), (0, 0))[1]

    routes: dict[str, int] = {}
    for method, n in unsubscribes.items():
        route = route_of(method)
        routes[route] = routes.get(route, 0) + n
    complaints = people("spamreport")
    if complaints:
        routes["complaint"] = complaints
    day = _issue_date(send.issue) or send.started_at.date()
    return IssueRow(
        period=send.issue,
        newsletter=send.newsletter,
        start=day,
        issues=1,
        recipients=sum(states.values()),
        sent=sum(states.get(s, 0) for s in sr.REACHED),
        delivered=people("delivered"),
        opened=people("open"),
        machine_opened=people("open", machine=True),
        clickers=people("click"),
        clicks=events.get(("click", False, ""), (0, 0))[0],
        hard_bounces=people("bounce", detail="bounce"),
        soft_bounces=people("bounce", detail="blocked"),
        complaints=complaints,
        unsubscribes=routes,
    )


def _by_period(rows: list[IssueRow], by: By) -> list[IssueRow]:
    """Sums per (period, newsletter): counts of people add up across issues, so each rate is
    the period's issues' readers over their deliveries."""
    out: dict[tuple[str, str], IssueRow] = {}
    for row in rows:
        label, start, _ = period_of(row.start, by)
        key = (label, row.newsletter)
        if key not in out:
            out[key] = IssueRow(label, row.newsletter, start, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        out[key].add(row)
    return sorted(out.values(), key=lambda r: (r.start, r.newsletter))


def _health(
    changes: list[sr.ListChange], since: dt.date, until: dt.date, by: By
) -> list[HealthRow]:
    periods = []
    day = since
    while day <= until:
        label, start, end = period_of(day, by)
        periods.append((label, max(start, since), min(end, until + dt.timedelta(days=1))))
        day = end
    out = []
    for name in sorted({c.newsletter for c in changes}):
        mine = [c for c in changes if c.newsletter == name]
        count = sum(c.count if c.kind == "joined" else -c.count for c in mine if c.day < since)
        for label, start, end in periods:
            row = HealthRow(name, label, start, end, count, count)
            for c in mine:
                if start <= c.day < end:
                    target = row.joined if c.kind == "joined" else row.left
                    what = source_of(c.method) if c.kind == "joined" else reason_of(c)
                    target[what] = target.get(what, 0) + c.count
            count += sum(row.joined.values()) - sum(row.left.values())
            row.subscribed_end = count
            out.append(row)
    return out


def _groups(
    stories: list[StoryStats], delivered: dict[str, int], names: Callable[[StoryStats], list[str]]
) -> list[Group]:
    found: dict[str, list[StoryStats]] = {}
    for story in stories:
        for name in names(story):
            found.setdefault(name, []).append(story)
    groups = [
        Group(
            name,
            len(members),
            len({s.issue for s in members}),
            sum(s.clickers for s in members),
            sum(s.clicks for s in members),
            sum(delivered.get(s.issue, 0) for s in members),
        )
        for name, members in found.items()
    ]
    return sorted(groups, key=lambda g: (-g.clickers, g.name))
