"""Per-story attribution end to end: a send through the SendGrid-compatible server, webhook
events built from the links in the emails it received, and `newsletter stats` naming the
stories that were clicked, whatever the provider did to their URLs."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from click.testing import CliRunner
from starlette.testclient import TestClient

from newsletter.build.attribution import normalise
from newsletter.cli import cli
from tests.conftest import Clock
from tests.webhook_signing import WebhookSigner, body_of

ISSUE = "daily/2025-05-14"
EXPORT = "https://news.harbourledger.example/2025-05-14/export-credit-insurance"
FERRIES = "https://news.harbourledger.example/2025-05-14/electric-ferries"


def click(n: int, subscriber: int, url: str) -> dict[str, object]:
    return {
        "email": "someone@example.com",
        "event": "click",
        "url": url,
        "sg_event_id": f"click-{n}",
        "sg_message_id": f"m{subscriber}",
        "timestamp": 1747200000 + n,
        "nl_issue": ISSUE,
        "nl_subscriber": str(subscriber),
    }


def delivered(n: int, subscriber: int) -> dict[str, object]:
    return {**click(n, subscriber, ""), "event": "delivered", "sg_event_id": f"dl-{n}"}


def hrefs(html: str) -> list[str]:
    """The links as a mail client follows them (HTML entities decoded)."""
    return [unescape(u) for u in re.findall(r'href="([^"]+)"', html)]


def test_clicks_map_to_the_stories_of_the_email_that_was_sent(
    service: TestClient,
    sending: Path,
    fake_sendgrid,  # type: ignore[no-untyped-def]
    webhook_signer: WebhookSigner,
    clock: Clock,
) -> None:
    from tests.send.backends.test_sendgrid import send, setup_list

    setup_list(sending, 3, premium_every=3)  # r00000, r00001 free; r00002 premium; and Jane
    assert json.loads(send(sending).stdout)["sent"] == 4
    people = {}
    html = {}
    for body in fake_sendgrid.requests:
        for p in body["personalizations"]:
            people[p["to"][0]["email"]] = int(p["custom_args"]["nl_subscriber"])
            html[p["to"][0]["email"]] = next(
                c["value"] for c in body["content"] if c["type"] == "text/html"
            )
    free, premium = people["r00000@example.com"], people["r00002@example.com"]
    other_free = people["r00001@example.com"]
    links = hrefs(html["r00000@example.com"])
    export = next(u for u in links if u.startswith(EXPORT))
    ferries = next(u for u in links if u.startswith(FERRIES))
    assert "utm_medium=email" in export  # the link as the email carries it
    parts = urlsplit(export)
    rewritten = urlunsplit(  # a provider's variant: http, upper-case host, slash, fragment
        ("http", parts.netloc.upper(), parts.path + "/", parts.query + "&utm_content=top", "x")
    )
    view = next(u for u in links if u.endswith(f"/{ISSUE}/"))
    premium_ferries = next(u for u in hrefs(html["r00002@example.com"]) if u.startswith(FERRIES))
    events = [delivered(i, sid) for i, sid in enumerate(people.values())] + [
        click(10, free, export),
        click(11, other_free, rewritten),
        click(12, other_free, export),  # the same person again: two clicks, one clicker
        click(13, premium, premium_ferries),
        click(14, free, ferries.split("?")[0]),  # no UTM parameters at all
        click(15, free, view),
        click(16, premium, "https://elsewhere.example/ad"),
    ]
    body = body_of(events)
    answer = service.post(
        "/webhooks/sendgrid", content=body, headers=webhook_signer.headers(body, int(clock()))
    )
    assert answer.status_code == 200

    result = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    stories = stats["stories"]
    assert [s["position"] for s in stories] == list(range(1, 10))  # ordered as in the issue
    first = stories[0]
    assert (first["title"], first["clickers"], first["clicks"]) == (
        "China's exporters get more help to withstand the trade war",
        2,
        3,
    )
    assert first["click_rate"] == 2 / 4  # among the 4 delivered
    assert first["paywalled"] is True
    assert {t["tier"]: (t["delivered"], t["clickers"]) for t in first["by_tier"]} == {
        "free": (3, 2),  # free readers clicking a paywalled teaser
        "premium": (1, 0),
    }
    ferry = next(s for s in stories if s["key"] == normalise(FERRIES))
    assert (ferry["clickers"], ferry["clicks"]) == (2, 2)
    assert {t["tier"]: t["clickers"] for t in ferry["by_tier"]} == {"free": 1, "premium": 1}
    assert sum(s["clicks"] for s in stories) == 5
    assert {o["kind"]: o["clicks"] for o in stats["other_links"]} == {
        "view in browser": 1,
        "other": 1,
    }

    table = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE])
    assert table.exit_code == 0
    lines = table.output.split("Stories (", 1)[1].splitlines()
    assert max(len(line) for line in lines) <= 100  # the story section fits 100 columns
    row = next(line for line in lines if "China's exporters" in line)
    assert re.match(r"^ +1 +2 +3 +50\.0 % +2 \(66\.7 %\) +0 \(0\.0 %\)  China", row), row
    assert row.endswith("[paywalled]")
    assert re.search(r"^  view in browser +1 +1$", table.output, re.M)


def test_normalise_ignores_what_providers_and_utm_change() -> None:
    plain = "https://news.example.com/a/story?id=7"
    for variant in (
        "https://news.example.com/a/story?id=7&utm_source=newsletter&utm_medium=email",
        "http://NEWS.example.com:80/a/story/?id=7&utm_campaign=x#top",
        "https://news.example.com:443/a/story?utm_term=y&id=7&gclid=abc",
    ):
        assert normalise(variant) == normalise(plain), variant
    assert normalise("https://news.example.com/a/story?id=8") != normalise(plain)
    assert normalise("https://news.example.com/a/other?id=7") != normalise(plain)
