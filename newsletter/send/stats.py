"""What happened to one issue: the send journal (what we handed over) and the provider's
events (what happened next), and where the two disagree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from newsletter.reports.stories import OtherLinks, StoryStats, attribute
from newsletter.store import Store, journal
from newsletter.store import events as eq
from newsletter.workspace import Workspace


@dataclass(frozen=True)
class Link:
    url: str
    clicks: int
    clickers: int


@dataclass(frozen=True)
class IssueStats:
    issue: str
    backend: str | None
    recipients: int
    sent: int
    failed: int
    unknown: int
    pending: int
    delivered: int
    bounced: int  # hard bounces: now suppressed
    blocked: int  # refused for now by the receiving server; not suppressed
    dropped: int
    deferred: int
    complained: int
    unsubscribed: int  # recipients who left this newsletter between this send and the next
    opens_human: int  # distinct recipients
    opens_machine: int  # distinct recipients whose mail app fetched the images (Apple MPP)
    clicks: int
    clickers: int
    top_links: list[Link] = field(default_factory=list)
    sent_without_events: int | None = None  # sent, never heard of again (SendGrid sends only)
    events_without_send: int = 0  # events naming this issue for someone the journal lacks
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)  # the commonest, counted
    scheduled_for: str | None = None  # handed over to go out then (SendGrid's send_at), ISO
    stories: list[StoryStats] = field(default_factory=list)  # in the issue's order
    other_links: list[OtherLinks] = field(default_factory=list)  # clicks on links not stories

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["stories"] = [s.to_json() for s in self.stories]
        return data


def issue_stats(store: Store, issue: str, workspace: Workspace | None = None) -> IssueStats | None:
    """None if the issue was never sent and no event names it. With the workspace, clicks
    are also attributed to the issue's stories (from its build's article records)."""
    with store.begin() as conn:
        send = eq.send_row(conn, issue)
        states = eq.journal_states(conn, issue)
        events = eq.per_event(conn, issue)
        if send is None and not events:
            return None

        def people(event: str, machine: bool = False) -> int:
            return events.get((event, machine), (0, 0))[1]

        bounces = eq.detail_counts(conn, issue, "bounce")
        links = [Link(*row) for row in eq.top_links(conn, issue)]
        newsletter = issue.split("/", 1)[0]
        unsubscribed = (
            eq.unsubscribed_after(conn, issue, newsletter, send["started_at"]) if send else 0
        )
        result = IssueStats(
            issue=issue,
            backend=send["backend"] if send else None,
            recipients=sum(states.values()),
            sent=states.get("sent", 0),
            failed=states.get("failed", 0),
            unknown=states.get("unknown", 0),
            pending=sum(states.get(s, 0) for s in ("pending", "claimed", "inflight")),
            delivered=people("delivered"),
            bounced=bounces.get("bounce", 0),
            blocked=bounces.get("blocked", 0),
            dropped=people("dropped"),
            deferred=people("deferred"),
            complained=people("spamreport"),
            unsubscribed=unsubscribed,
            opens_human=people("open"),
            opens_machine=people("open", machine=True),
            clicks=events.get(("click", False), (0, 0))[0],
            clickers=people("click"),
            top_links=links,
            sent_without_events=eq.sent_without_events(conn, issue)
            if send and send["backend"] == "sendgrid"
            else None,
            events_without_send=eq.events_unknown_to_journal(conn, issue),
            failure_reasons=journal.failure_reasons(conn, issue),
            scheduled_for=send["scheduled_for"].isoformat()
            if send and send.get("scheduled_for")
            else None,
        )
    clicks = attribute(store, workspace, [issue])
    result.stories.extend(clicks.stories.get(issue, []))
    result.other_links.extend(clicks.other.get(issue, []))
    return result
