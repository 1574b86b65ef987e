"""The SendGrid Event Webhook: signatures (the library's published vector, our own P-256 key,
and every way a request can be wrong), idempotent storage, and what events do to the lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from newsletter.audience.subscribers import add, listing
from newsletter.cli import cli
from newsletter.store import events as eq
from newsletter.web import create_app
from newsletter.workspace import Workspace
from tests.conftest import Clock
from tests.webhook_signing import WebhookSigner, body_of

URL = "/webhooks/sendgrid"
ISSUE = "daily/2025-05-14"

# the sendgrid library's own test vector (test/unit/test_eventwebhook.py)
SG_PUBLIC_KEY = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
SG_SIGNATURE = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
SG_TIMESTAMP = "1600112502"
SG_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()


def event(kind: str, n: int, subscriber: int = 1, **extra: object) -> dict[str, object]:
    return {
        "email": "jane.doe@example.com",
        "event": kind,
        "sg_event_id": f"ev-{kind}-{n}",
        "sg_message_id": f"msg{subscriber}.filter",
        "timestamp": 1747200000 + n,
        "nl_issue": ISSUE,
        "nl_subscriber": str(subscriber),
        **extra,
    }


def post(client: TestClient, signer: WebhookSigner, clock: Clock, events: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    body = body_of(events)
    return client.post(URL, content=body, headers=signer.headers(body, int(clock())))


def stored(client: TestClient) -> int:
    with client.store.begin() as conn:  # type: ignore[attr-defined]
        return eq.count(conn)


def suppressed(client: TestClient) -> dict[str, str | None]:
    return {p.email: p.suppressed for p in listing(client.store)}  # type: ignore[attr-defined]


def test_the_sendgrid_librarys_published_vector_verifies(
    workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.store import open_store

    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 40)
    monkeypatch.setenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", SG_PUBLIC_KEY)
    store = open_store(db_url)
    add(store, "hello@world.com", "daily")
    clock = Clock()
    clock.now = int(SG_TIMESTAMP) + 30
    with TestClient(create_app(Workspace(workspace), store, clock=clock)) as client:
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": SG_SIGNATURE,
            "X-Twilio-Email-Event-Webhook-Timestamp": SG_TIMESTAMP,
        }
        response = client.post(URL, content=SG_PAYLOAD, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"received": 1, "stored": 1}
        # a dropped "Bounced Address" suppresses the address
        assert [p.suppressed for p in listing(store)] == ["bounce"]
        # one byte changed in the body: refused
        tampered = SG_PAYLOAD.replace(b"hello@world.com", b"hello@world.org")
        assert client.post(URL, content=tampered, headers=headers).status_code == 403
    store.close()


def test_a_batch_signed_with_our_key_is_stored_and_counted(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    batch = [
        event("processed", 1),
        event("delivered", 2),
        event("open", 3, sg_machine_open=True),
        event("open", 4, sg_machine_open=False),
        event("click", 5, url="https://harbourledger.example/a"),
        event("click", 6, url="https://harbourledger.example/a"),
    ]
    response = post(service, webhook_signer, clock, batch)
    assert response.status_code == 200
    assert response.json() == {"received": 6, "stored": 6}
    with service.store.begin() as conn:  # type: ignore[attr-defined]
        counts = eq.per_event(conn, ISSUE)
        assert counts[("open", True)] == (1, 1) and counts[("open", False)] == (1, 1)
        assert eq.top_links(conn, ISSUE) == [("https://harbourledger.example/a", 2, 1)]
    assert suppressed(service) == {"jane.doe@example.com": None}  # nothing here suppresses


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"X-Twilio-Email-Event-Webhook-Timestamp": "NOW"}, "no signature"),
        ({"X-Twilio-Email-Event-Webhook-Signature": "SIG"}, "no timestamp"),
        ({"X-Twilio-Email-Event-Webhook-Signature": "!!not base64!!"}, "malformed"),
        ({"X-Twilio-Email-Event-Webhook-Signature": "AAAA"}, "not DER"),
        (
            {
                "X-Twilio-Email-Event-Webhook-Signature": "SIG",
                "X-Twilio-Email-Event-Webhook-Timestamp": "12ab",
            },
            "bad timestamp",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_missing_or_malformed_signature_is_403_not_500(
    service: TestClient,
    webhook_signer: WebhookSigner,
    clock: Clock,
    headers: dict[str, str],
    why: str,
) -> None:
    body = body_of([event("bounce", 1, type="bounce")])
    now = str(int(clock()))
    good = webhook_signer.sign(body, now)
    sent = {k: v.replace("NOW", now).replace("SIG", good) for k, v in headers.items()}
    sent["Content-Type"] = "application/json"
    response = service.post(URL, content=body, headers=sent)
    assert response.status_code == 403, why
    assert stored(service) == 0
    assert suppressed(service) == {"jane.doe@example.com": None}


def test_a_signature_by_another_key_is_refused(service: TestClient, clock: Clock) -> None:
    other = WebhookSigner()
    response = post(service, other, clock, [event("spamreport", 1)])
    assert response.status_code == 403
    assert stored(service) == 0 and suppressed(service) == {"jane.doe@example.com": None}


def test_a_re_serialised_body_no_longer_verifies(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    body = body_of([event("spamreport", 1)])
    headers = webhook_signer.headers(body, int(clock()))
    reserialised = json.dumps(json.loads(body), indent=1).encode()  # same events, other bytes
    assert service.post(URL, content=reserialised, headers=headers).status_code == 403
    assert service.post(URL, content=body, headers=headers).status_code == 200


@pytest.mark.parametrize("offset", [-(25 * 3600 + 5), 3600], ids=["stale", "future"])
def test_a_timestamp_outside_the_window_is_refused(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock, offset: int
) -> None:
    body = body_of([event("spamreport", 1)])
    response = service.post(
        URL, content=body, headers=webhook_signer.headers(body, int(clock() + offset))
    )
    assert response.status_code == 403
    # a delivery retried within SendGrid's 24 hours still verifies
    old = body_of([event("delivered", 2)])
    response = service.post(
        URL, content=old, headers=webhook_signer.headers(old, int(clock() - 23 * 3600))
    )
    assert response.status_code == 200


def test_without_a_verification_key_every_request_is_refused(
    workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, webhook_signer: WebhookSigner
) -> None:
    from newsletter.store import open_store

    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 40)
    monkeypatch.delenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", raising=False)
    store = open_store(db_url)
    with TestClient(create_app(Workspace(workspace), store)) as client:
        body = body_of([event("delivered", 1)])
        response = client.post(
            URL, content=body, headers=webhook_signer.headers(body, int(__import__("time").time()))
        )
        assert response.status_code == 403
        with store.begin() as conn:
            assert eq.count(conn) == 0
    store.close()


def test_a_signed_body_that_is_not_a_list_of_events_is_400(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    for body in (b"not json", b'{"event": "open"}', b"[1, 2]"):
        response = service.post(
            URL, content=body, headers=webhook_signer.headers(body, int(clock()))
        )
        assert response.status_code == 400
    assert stored(service) == 0


def test_duplicates_and_retries_are_stored_once(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    batch = [event("delivered", 1), event("open", 2), event("open", 2)]  # a duplicate inside
    first = post(service, webhook_signer, clock, batch)
    assert first.json() == {"received": 3, "stored": 2}
    retry = post(service, webhook_signer, clock, batch)  # SendGrid retries the whole batch
    assert retry.status_code == 200 and retry.json() == {"received": 3, "stored": 0}
    assert stored(service) == 2


def test_events_that_suppress_and_those_that_do_not(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    people = {
        "bounce@example.com": event("bounce", 1, 0, type="bounce", reason="550 no such user"),
        "blocked@example.com": event("bounce", 2, 0, type="blocked", reason="451 try later"),
        "spam@example.com": event("spamreport", 3, 0),
        "dropped-bounce@example.com": event("dropped", 4, 0, reason="Bounced Address"),
        "dropped-spam@example.com": event("dropped", 5, 0, reason="Spam Reporting Address"),
        "dropped-unsub@example.com": event("dropped", 6, 0, reason="Unsubscribed Address"),
        "dropped-other@example.com": event("dropped", 7, 0, reason="Invalid SMTPAPI header"),
        "deferred@example.com": event("deferred", 8, 0, response="421 busy"),
    }
    for email, e in people.items():
        add(service.store, email, "daily")  # type: ignore[attr-defined]
        e["email"] = email
        del e["nl_subscriber"]  # matched by address when no subscriber id came back
    assert post(service, webhook_signer, clock, list(people.values())).status_code == 200
    state = suppressed(service)
    assert {k: state[k] for k in people} == {
        "bounce@example.com": "bounce",
        "blocked@example.com": None,
        "spam@example.com": "complaint",
        "dropped-bounce@example.com": "bounce",
        "dropped-spam@example.com": "complaint",
        "dropped-unsub@example.com": "unsubscribed",
        "dropped-other@example.com": None,
        "deferred@example.com": None,
    }
    # a later delivered never lifts a suppression
    late = event("delivered", 9, 0, email="bounce@example.com")
    assert post(service, webhook_signer, clock, [late]).status_code == 200
    assert suppressed(service)["bounce@example.com"] == "bounce"


def test_an_unsubscribe_event_leaves_the_issues_newsletter_only(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    assert post(service, webhook_signer, clock, [event("unsubscribe", 1)]).status_code == 200
    (jane,) = listing(service.store)  # type: ignore[attr-defined]
    assert jane.newsletters == {"daily": "unsubscribed", "weekly": "subscribed"}
    # without our custom_args (a message sent by another tool): found by address, and
    # without an issue it means every newsletter
    bare = {
        "email": "jane.doe@EXAMPLE.com",
        "event": "group_unsubscribe",
        "sg_event_id": "bare-1",
    }
    assert post(service, webhook_signer, clock, [bare]).status_code == 200
    (jane,) = listing(service.store)  # type: ignore[attr-defined]
    assert jane.newsletters == {"daily": "unsubscribed", "weekly": "unsubscribed"}


def test_a_batch_of_five_thousand_events_in_one_request(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    batch = [event("delivered", n, subscriber=n) for n in range(5000)]
    response = post(service, webhook_signer, clock, batch)
    assert response.json() == {"received": 5000, "stored": 5000}
    assert stored(service) == 5000


def test_stats_after_a_sendgrid_send_and_its_events(
    service: TestClient,
    sending: Path,
    fake_sendgrid,  # type: ignore[no-untyped-def]
    webhook_signer: WebhookSigner,
    clock: Clock,
) -> None:
    from tests.send.backends.test_sendgrid import send, setup_list

    setup_list(sending, 4, premium_every=100)
    assert json.loads(send(sending).stdout)["sent"] == 5  # Jane and four readers
    people = [p["custom_args"] for b in fake_sendgrid.requests for p in b["personalizations"]]
    ids = [int(a["nl_subscriber"]) for a in people]
    assert {a["nl_issue"] for a in people} == {ISSUE}
    first, second, third, fourth, _fifth = ids  # the fifth hears nothing
    batch = [
        event("delivered", 1, first),
        event("delivered", 2, second),
        event("delivered", 3, third),
        event("open", 4, first, sg_machine_open=True),
        event("open", 5, second),
        event("open", 6, second),
        event("click", 7, second, url="https://example.com/story"),
        event("click", 8, third, url="https://example.com/story"),
        event("click", 9, third, url="https://example.com/other"),
        event("bounce", 10, fourth, type="bounce"),
        event("spamreport", 11, third),
        event("delivered", 12, 999_999),  # a message the journal does not know
    ]
    assert post(service, webhook_signer, clock, batch).status_code == 200
    result = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {k: stats[k] for k in ("recipients", "sent", "failed", "unknown")} == {
        "recipients": 5,
        "sent": 5,
        "failed": 0,
        "unknown": 0,
    }
    assert {
        k: stats[k]
        for k in (
            "delivered",
            "bounced",
            "complained",
            "opens_human",
            "opens_machine",
            "clicks",
            "clickers",
        )
    } == {
        "delivered": 4,
        "bounced": 1,
        "complained": 1,
        "opens_human": 1,
        "opens_machine": 1,
        "clicks": 3,
        "clickers": 2,
    }
    assert stats["top_links"][0] == {"url": "https://example.com/story", "clicks": 2, "clickers": 2}
    assert stats["sent_without_events"] == 1  # the fifth reader: nothing heard
    assert stats["events_without_send"] == 1
    table = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE])
    assert table.exit_code == 0
    assert re.search(r"^  Delivered +4 +80\.0 %$", table.output, re.M), table.output
    assert re.search(r"^  Opened \(people\) +1 +20\.0 %$", table.output, re.M)
    assert re.search(r"^ +2 +2  https://example\.com/story$", table.output, re.M)
    assert "Reconcile: 1 sent message(s) with no event from the provider" in table.output
    assert "Reconcile: 1 event(s) for messages the send journal does not know" in table.output


def test_stats_of_an_issue_never_sent_is_a_clear_error(sending: Path) -> None:
    result = CliRunner().invoke(cli, ["-w", str(sending), "stats", "daily/2025-05-13"])
    assert result.exit_code == 1
    assert (
        result.output.strip() == "Error: daily/2025-05-13 has not been sent and no event names it"
    )


def test_the_same_batch_delivered_twice_at_once_acts_once(store) -> None:  # type: ignore[no-untyped-def]
    """SendGrid may retry while the first delivery is still being stored: on PostgreSQL the
    two transactions race on the unique event id, and only the one that stored acts."""
    import datetime as dt
    import threading

    from newsletter.audience import delivery as ev
    from newsletter.send.backends.sendgrid_webhook import parse
    from newsletter.store import people as q

    add(store, "racer@example.com", "daily")
    now = dt.datetime.now(dt.UTC)
    batch = [event("spamreport", n, 1, email="racer@example.com") for n in range(50)]
    batch += [event("delivered", 100 + n, 1) for n in range(500)]
    parsed = parse(body_of(batch), now)
    results: list[ev.Recorded] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        results.append(ev.record(store, parsed))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.stored for r in results) == [0, 550]
    assert sum(r.suppressed for r in results) == 1
    with store.begin() as conn:
        assert eq.count(conn) == 550
        person = q.by_key(conn, "racer@example.com")
        assert person is not None
        actions = [e["action"] for e in q.history(conn, person.email_hash)]
    assert actions == ["subscribed", "suppressed"]


def test_serve_says_at_start_that_the_webhook_is_refused_without_a_key(
    sending: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import newsletter.web

    started: list[int] = []
    monkeypatch.setattr(newsletter.web, "run", lambda app, host, port: started.append(port))
    monkeypatch.delenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", raising=False)
    assert CliRunner().invoke(cli, ["-w", str(sending), "db", "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["-w", str(sending), "serve", "--port", "8123"])
    assert result.exit_code == 0 and started == [8123]
    assert "/webhooks/sendgrid refuses every request" in result.stderr
    monkeypatch.setenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", "not a key")
    result = CliRunner().invoke(cli, ["-w", str(sending), "serve"])
    assert result.exit_code == 1 and started == [8123]
    assert result.stderr.startswith("Error: the SendGrid webhook verification key is not a base64")


def test_events_not_stored_are_not_acknowledged(
    service: TestClient,
    webhook_signer: WebhookSigner,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer is 2xx only once the events are stored: a failing database gets a 503,
    so SendGrid delivers the batch again later."""
    from newsletter.audience import delivery as ev
    from newsletter.errors import StoreError

    def locked(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the database is locked by another process")

    monkeypatch.setattr(ev, "record", locked)
    response = post(service, webhook_signer, clock, [event("delivered", 1)])
    assert response.status_code == 503
    assert "try again" in response.text
    assert stored(service) == 0


def test_an_event_acts_on_the_address_it_was_sent_to(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    """If the subscriber id in custom_args now names someone else (the reader was erased and
    the id reused), the bounce suppresses the address it was sent to, not that person."""
    bounce = event("bounce", 1, 1, type="bounce", email="someone.else@example.org")
    assert post(service, webhook_signer, clock, [bounce]).status_code == 200
    assert suppressed(service) == {"jane.doe@example.com": None}
    from newsletter.errors import SubscriberError

    with pytest.raises(SubscriberError, match="suppression list"):
        add(service.store, "someone.else@example.org", "daily")  # type: ignore[attr-defined]


def test_odd_events_are_stored_not_a_500(
    service: TestClient, webhook_signer: WebhookSigner, clock: Clock
) -> None:
    odd: list[dict[str, object]] = [
        {},
        {"event": 123, "sg_event_id": 5},
        {"event": "bounce", "type": None, "email": "not an address", "sg_event_id": "o1"},
        {"event": "open", "timestamp": 10**30, "sg_event_id": "o2", "nl_subscriber": "9" * 40},
        {"event": "click", "url": ["x"], "nl_issue": "../../etc", "sg_event_id": "o3"},
        {"event": "unsubscribe", "email": "nobody@example.com", "sg_event_id": "o4"},
        {"event": "spamreport", "sg_event_id": "o5", "email": "x" * 400 + "@example.com"},
    ]
    response = post(service, webhook_signer, clock, odd)
    assert response.status_code == 200 and response.json() == {"received": 7, "stored": 7}
    assert post(service, webhook_signer, clock, []).json() == {"received": 0, "stored": 0}
    assert suppressed(service) == {"jane.doe@example.com": None}
