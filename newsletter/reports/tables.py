"""The report as a few compact text tables that fit 100 columns: returned as lines, for the
CLI to print (the core never prints)."""

from __future__ import annotations

from newsletter.reports.overview import UNSUBSCRIBE_ROUTES, Group, Report

WIDTH = 100


def pct(rate: float | None) -> str:
    return f"{100 * rate:.1f}%" if rate is not None else "-"


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _counts(parts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])) or "none"


def lines(report: Report) -> list[str]:
    scope = report.newsletter or "every newsletter"
    out = [f"Report for {scope}, {report.since} to {report.until}, by {report.by}"]
    out += ["", *_sends(report)]
    out += ["", *_health(report)]
    out += ["", *_stories(report)]
    for title, groups in (
        ("Sections", report.sections),
        ("Authors", report.authors),
        ("Tags", report.tags),
    ):
        if groups:
            out += ["", *_groups(title, groups)]
    if report.overlap:
        out += ["", *_overlap(report)]
    return out


def _sends(report: Report) -> list[str]:
    if not report.rows:
        return ["No issue was sent in this period."]
    row = "{:<26}{:>8}{:>8}{:>7}{:>7}{:>7}{:>7}{:>6}{:>6}{:>6}{:>6}".format
    out = [
        "Sends (rates against delivered; opens by people, Apple's machine opens apart):",
        row(
            report.by,
            "sent",
            "deliv",
            "open",
            "mach.",
            "click",
            "CTOR",
            "unsub",
            "hard",
            "soft",
            "spam",
        ),
    ]
    for r in report.rows:
        label = r.period if report.by == "issue" else f"{r.period} {r.newsletter}"
        out.append(
            row(
                cut(label, 25),
                r.sent,
                pct(r.delivery_rate),
                pct(r.open_rate),
                pct(r.machine_opened / r.delivered if r.delivered else None),
                pct(r.click_rate),
                pct(r.click_to_open_rate),
                r.unsubscribed,
                r.hard_bounces,
                r.soft_bounces,
                r.complaints,
            )
        )
    routes = {k: sum(r.unsubscribes.get(k, 0) for r in report.rows) for k in UNSUBSCRIBE_ROUTES}
    shown = ", ".join(f"{k} {v}" for k, v in routes.items() if v or k in UNSUBSCRIBE_ROUTES[:4])
    out.append(f"Unsubscribes by route: {shown}")
    return out


def _health(report: Report) -> list[str]:
    if not report.health:
        return ["List health: no consent history in this period."]
    row = "{:<12}{:<10}{:>11}{:>8}{:>8}{:>8}{:>11}{:>8}".format
    out = [
        "List health (from the consent history):",
        row("newsletter", "period", "subscribed", "joined", "left", "net", "at the end", "churn"),
    ]
    joined: dict[str, int] = {}
    left: dict[str, int] = {}
    for h in report.health:
        out.append(
            row(
                cut(h.newsletter, 11),
                h.period,
                h.subscribed_start,
                sum(h.joined.values()),
                sum(h.left.values()),
                f"{h.net:+d}",
                h.subscribed_end,
                pct(h.churn_rate),
            )
        )
        for k, v in h.joined.items():
            joined[k] = joined.get(k, 0) + v
        for k, v in h.left.items():
            left[k] = left.get(k, 0) + v
    out.append(cut(f"Joined by source: {_counts(joined)}", WIDTH))
    out.append(cut(f"Left by reason: {_counts(left)}", WIDTH))
    return out


def _stories(report: Report) -> list[str]:
    if not report.top_stories:
        return ["Top stories: no click on a story in this period."]
    out = ["Top stories (people who clicked, rate among delivered):"]
    for s in report.top_stories:
        head = f"{s.clickers:>7} {pct(s.click_rate):>7}  {s.issue:<18} "
        out.append(head + cut(s.title, WIDTH - len(head)))
    return out


def _groups(title: str, groups: list[Group]) -> list[str]:
    row = "{:<40}{:>9}{:>8}{:>10}{:>9}".format
    out = [f"{title} (clickers summed over stories; rate among delivered):"]
    out.append(row("", "stories", "issues", "clickers", "rate"))
    for g in groups[:8]:
        out.append(row(cut(g.name, 39), g.stories, g.issues, g.clickers, pct(g.click_rate)))
    return out


def _overlap(report: Report) -> list[str]:
    out = ["Readers in common (read: opened or clicked in this period; subscribed: now):"]
    for o in report.overlap:
        read = f"{o.also_read_other} of {o.readers} readers" if o.readers else "no readers"
        subs = f"{o.also_subscribed_other} of {o.subscribers} subscribers"
        share = f" ({pct(o.also_read_other / o.readers)})" if o.readers else ""
        out.append(
            cut(
                f"  {o.newsletter} → {o.other}: {read}{share} also read {o.other}; "
                f"{subs} also subscribe",
                WIDTH,
            )
        )
    return out
