"""Double opt-in: the form, the confirmation email in the outbox, the confirm page whose GET
changes nothing, expiry, no enumeration, rate limits, and suppression that always wins."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from newsletter.audience.subscribers import add, forget, listing
from newsletter.errors import SubscriberError
from tests.conftest import Clock


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def outbox(client: TestClient) -> list[email.message.EmailMessage]:
    folder = Path(client.workspace) / "outbox" / "notices"  # type: ignore[attr-defined]
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]  # type: ignore[misc]


def sign_up(client: TestClient, address: str, *newsletters: str, **extra: str):  # type: ignore[no-untyped-def]
    form = client.get("/subscribe").text
    data = {"csrf": csrf(form), "email": address, "newsletter": list(newsletters), **extra}
    return client.post("/subscribe", data=data)


def status(client: TestClient, address: str) -> dict[str, str]:
    people = {p.email: p.newsletters for p in listing(client.store)}  # type: ignore[attr-defined]
    return people.get(address, {})


def confirm_link(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"https://newsletters\.harbourledger\.example(/confirm/\S+)", text)
    assert match, text
    return match.group(1)


def test_sign_up_mails_a_link_whose_page_confirms_only_on_post(service: TestClient) -> None:
    response = sign_up(service, "new.reader@example.net", "daily", "green")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert status(service, "new.reader@example.net") == {"daily": "pending", "green": "pending"}
    (message,) = outbox(service)
    assert message["To"] == "new.reader@example.net"
    assert message["Subject"] == "Confirm your subscription to The Daily Brief and Green Economy"
    assert message["From"] == "The Daily Brief <brief@harbourledger.example>"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    path = confirm_link(message)
    assert f"https://newsletters.harbourledger.example{path}" in html
    # opening the link (what a mail scanner does) confirms nothing
    page = service.get(path)
    assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert status(service, "new.reader@example.net") == {"daily": "pending", "green": "pending"}
    done = service.post(path, data={"csrf": csrf(page.text)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert status(service, "new.reader@example.net") == {
        "daily": "subscribed",
        "green": "subscribed",
    }
    # and again: idempotent
    assert service.post(path, data={"csrf": csrf(page.text)}).status_code == 200


def test_the_answer_is_the_same_for_known_new_and_suppressed_addresses(service: TestClient) -> None:
    add(service.store, "gone@example.com", "daily")  # type: ignore[attr-defined]
    forget(service.store, "gone@example.com")  # type: ignore[attr-defined]
    pages = [
        sign_up(service, address, "daily").text
        for address in ("jane.doe@example.com", "someone.new@example.com", "gone@example.com")
    ]
    strip = [re.sub(r'name="csrf" value="[^"]+"', "", p) for p in pages]
    assert strip[0] == strip[1] == strip[2]
    # Jane was subscribed already and the erased address is suppressed: neither is mailed
    assert [m["To"] for m in outbox(service)] == ["someone.new@example.com"]
    assert status(service, "gone@example.com") == {}


def test_a_confirm_post_without_its_form_token_confirms_nothing(service: TestClient) -> None:
    sign_up(service, "new.reader@example.net", "daily")
    path = confirm_link(outbox(service)[0])
    assert service.post(path).status_code == 403
    assert service.post(path, data={"csrf": "x"}).status_code == 403
    assert status(service, "new.reader@example.net") == {"daily": "pending"}


def test_a_confirmation_link_expires(service: TestClient, clock: Clock) -> None:
    sign_up(service, "slow.reader@example.net", "weekly")
    path = confirm_link(outbox(service)[0])
    clock.advance(7 * 24 * 3600 + 60)
    page = service.get(path)
    assert page.status_code == 400 and "expired" in page.text
    assert service.post(path, data={"csrf": "anything"}).status_code == 400
    assert status(service, "slow.reader@example.net") == {"weekly": "pending"}


@pytest.mark.parametrize("broken", ["tampered", "other-purpose"])
def test_a_bad_confirm_token_changes_nothing(service: TestClient, broken: str) -> None:
    from newsletter.audience.tokens import Signer
    from tests.conftest import WEB_SECRET

    sign_up(service, "new.reader@example.net", "daily")
    path = confirm_link(outbox(service)[0])
    if broken == "tampered":
        bad = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    else:  # a preferences token of the same subscriber
        subscriber = int(path.rsplit("/", 1)[1].split(".")[0])
        bad = "/confirm/" + Signer(WEB_SECRET).make("preferences", subscriber)
    assert service.get(bad).status_code == 400
    assert status(service, "new.reader@example.net") == {"daily": "pending"}


def test_repeated_requests_for_one_address_are_limited(service: TestClient, clock: Clock) -> None:
    for _ in range(5):
        assert sign_up(service, "eager@example.net", "daily").status_code == 200
        clock.advance(60)
    assert len(outbox(service)) == 3  # signups_per_address: three a day
    clock.advance(24 * 3600)
    sign_up(service, "eager@example.net", "daily")
    assert len(outbox(service)) == 4


def test_one_client_cannot_sign_up_the_world(service: TestClient) -> None:
    answers = [sign_up(service, f"r{i}@example.net", "daily").status_code for i in range(22)]
    assert answers[:20] == [200] * 20 and answers[20:] == [429, 429]
    assert len(outbox(service)) == 20


def test_form_errors_and_the_bot_trap(service: TestClient) -> None:
    bad = sign_up(service, "not an address", "daily")
    assert bad.status_code == 400 and "does not look like an email address" in bad.text
    assert 'value="not an address"' in bad.text  # kept, escaped, for correction
    none = sign_up(service, "a@example.net")
    assert none.status_code == 400 and "Choose at least one newsletter" in none.text
    twice = sign_up(service, "twice@example.net", "daily", "daily", "nonsense")
    assert twice.status_code == 200 and status(service, "twice@example.net") == {"daily": "pending"}
    assert outbox(service)[0]["To"] == "twice@example.net"
    for sent in (Path(service.workspace) / "outbox" / "notices").glob("*.eml"):  # type: ignore[attr-defined]
        sent.unlink()
    bot = sign_up(service, "bot@example.net", "daily", website="http://spam.example")
    assert bot.status_code == 200 and "Check your inbox" in bot.text
    assert outbox(service) == [] and status(service, "bot@example.net") == {}
    forged = service.post(
        "/subscribe", data={"csrf": "x", "email": "a@example.net", "newsletter": "daily"}
    )
    assert forged.status_code == 403 and outbox(service) == []


def test_the_form_can_be_framed_by_the_publications_site_only(service: TestClient) -> None:
    page = service.get("/subscribe?newsletter=green")
    assert (
        "frame-ancestors https://harbourledger.example" in page.headers["content-security-policy"]
    )
    assert "x-frame-options" not in page.headers
    assert re.findall(r'value="(\w+)" checked', page.text) == ["green"]
    assert service.get("/healthz").headers["x-frame-options"] == "DENY"


def test_a_suppressed_address_is_never_confirmed(service: TestClient) -> None:
    sign_up(service, "bouncy@example.net", "daily")
    path = confirm_link(outbox(service)[0])
    from newsletter.store import people as q

    with service.store.begin() as conn:  # type: ignore[attr-defined]
        person = q.by_key(conn, "bouncy@example.net")
        assert person is not None
        q.suppress(
            conn,
            [q.Suppression(person.email_hash, "bounce", "t", person.created_at)],
        )
    page = service.get(path)
    response = service.post(path, data={"csrf": csrf(page.text)})
    assert response.status_code == 410
    assert status(service, "bouncy@example.net") == {"daily": "pending"}
    with pytest.raises(SubscriberError):
        add(service.store, "bouncy@example.net", "daily")  # type: ignore[attr-defined]


def _app_with(
    workspace: Path, backend: str, settings: str, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    config = workspace / "newsletter.toml"
    config.write_text(config.read_text() + f'\n[serve]\nbackend = "{backend}"\n{settings}\n')
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 40)
    return TestClient(
        create_app(Workspace(workspace), open_store(f"sqlite:///{workspace / 'w.db'}"))
    )


def test_the_confirmation_goes_through_smtp(
    workspace: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import use_smtp

    use_smtp(workspace, smtp_server.port)
    with _app_with(workspace, "smtp", "", monkeypatch) as client:
        assert sign_up(client, "smtp.reader@example.net", "weekly").status_code == 200
    assert smtp_server.received() == ["smtp.reader@example.net"]
    data = smtp_server.messages[0][2]
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == "Confirm your subscription to The Week's Must-Reads"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "/confirm/" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_confirmation_goes_through_sendgrid_untracked(
    workspace: Path, fake_sendgrid, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    with _app_with(workspace, "sendgrid", "", monkeypatch) as client:
        assert sign_up(client, "api.reader@example.net", "daily").status_code == 200
    (body,) = fake_sendgrid.requests
    assert fake_sendgrid.recipients() == ["api.reader@example.net"]
    assert body["categories"] == ["notice:confirm"]
    assert "nl_issue" not in json.dumps(body)  # its events never count for an issue
    assert body["tracking_settings"]["click_tracking"] == {"enable": False}
    assert "/confirm/" in body["content"][0]["value"]


def test_serve_refuses_to_start_without_what_its_backend_needs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.errors import NewsletterError

    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    with pytest.raises(NewsletterError, match="SENDGRID_API_KEY"):
        _app_with(workspace, "sendgrid", "", monkeypatch)


def test_the_client_limit_forgets_quiet_clients_once_a_window() -> None:
    from newsletter.web.security import ClientLimiter

    limiter = ClientLimiter(limit=2, window=10)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    for n in range(1000):
        assert limiter.allow(f"client-{n}", 3)
    assert limiter.allow("a", 10.5) is True  # its first sign-up has left the window
    assert len(limiter._seen) == 1001  # nobody is forgotten inside the window
    assert limiter.allow("late", 25)  # a window later, one sweep drops the quiet ones
    assert set(limiter._seen) == {"late"}


# -- #11 rule 8: a confirmation confirms exactly what its email named ---------------------------


def test_a_confirmation_link_confirms_only_the_newsletters_its_email_named(
    service: TestClient, clock: Clock
) -> None:
    sign_up(service, "shared@example.net", "daily")
    clock.advance(60)
    sign_up(service, "shared@example.net", "weekly")  # someone else, later, same address
    first, second = outbox(service)
    assert first["Subject"] == "Confirm your subscription to The Daily Brief"
    assert second["Subject"] == "Confirm your subscription to The Week's Must-Reads"
    path = confirm_link(first)
    page = service.get(path)
    assert "The Daily Brief" in page.text and "Must-Reads" not in page.text
    done = service.post(path, data={"csrf": csrf(page.text)})
    assert done.status_code == 200 and "will receive The Daily Brief." in done.text
    assert status(service, "shared@example.net") == {"daily": "subscribed", "weekly": "pending"}
    # the second email's link confirms the second request, and only it
    later = confirm_link(second)
    service.post(later, data={"csrf": csrf(service.get(later).text)})
    assert status(service, "shared@example.net") == {"daily": "subscribed", "weekly": "subscribed"}


def test_an_old_confirmation_link_naming_no_newsletter_is_refused(service: TestClient) -> None:
    from newsletter.audience.tokens import Signer
    from tests.conftest import WEB_SECRET

    sign_up(service, "old.link@example.net", "daily")
    subscriber = int(confirm_link(outbox(service)[0]).rsplit("/", 1)[1].split(".")[0])
    old = "/confirm/" + Signer(WEB_SECRET).make("confirm", subscriber)  # as issued before #11
    page = service.get(old)
    assert page.status_code == 400 and "please sign up again" in page.text
    assert service.post(old, data={"csrf": "anything"}).status_code == 400
    assert status(service, "old.link@example.net") == {"daily": "pending"}
