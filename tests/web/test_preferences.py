"""The preferences page: one form for the newsletters (an addition goes through double
opt-in), the tier, "download my data" and "delete me" by a link emailed to the address,
each behind a confirming POST, CSRF on every form, tokens that must be right."""

from __future__ import annotations

import email
import email.message
import functools
import json
import re

import pytest
from starlette.testclient import TestClient

from newsletter.audience.subscribers import add, listing
from newsletter.audience.tokens import Signer
from tests.conftest import WEB_SECRET, Clock
from tests.web.test_subscribe import confirm_link, outbox


@functools.cache  # one link per subscriber, as in an email: forms are bound to their link
def url(subscriber_id: int = 1, purpose: str = "preferences", newsletter: str | None = None) -> str:
    return "/preferences/" + Signer(WEB_SECRET).make(purpose, subscriber_id, newsletter)  # type: ignore[arg-type]


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def newsletters(client: TestClient) -> dict[str, str]:
    people = {p.email: p for p in listing(client.store)}  # type: ignore[attr-defined]
    return people["jane.doe@example.com"].newsletters


def test_the_page_shows_the_choices_and_the_tier(service: TestClient) -> None:
    page = service.get(url())
    assert page.status_code == 200
    assert "j***@example.com" in page.text and "Free subscription" in page.text
    checked = re.findall(r'value="(\w+)" checked', page.text)
    assert checked == ["daily", "weekly"]
    assert 'value="green"' in page.text  # offered, not chosen


def test_one_form_changes_every_newsletter(service: TestClient) -> None:
    page = service.get(url())
    response = service.post(
        url(), data={"csrf": csrf(page.text), "newsletter": ["weekly", "green"]}
    )
    assert response.status_code == 200 and "Saved." in response.text
    assert newsletters(service) == {  # leaving is at once, joining awaits the confirmation
        "daily": "unsubscribed",
        "weekly": "subscribed",
        "green": "pending",
    }


def test_a_post_without_a_valid_csrf_token_changes_nothing(service: TestClient) -> None:
    own = service.get(url()).text
    for data in ({"newsletter": ["green"]}, {"csrf": "forged", "newsletter": ["green"]}):
        assert service.post(url(), data=data).status_code == 403
    # a token made for another subscriber's page does not carry over
    add(service.store, "bob@example.org", "daily")  # type: ignore[attr-defined]
    bob = service.get(url(2)).text
    assert service.post(url(), data={"csrf": csrf(bob), "newsletter": ["green"]}).status_code == 403
    # a post from another site is refused even with a good token
    response = service.post(
        url(),
        data={"csrf": csrf(own), "newsletter": ["green"]},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    # and so is one that hides its origin but that the browser says is cross-site
    hidden = {"Origin": "null", "Sec-Fetch-Site": "cross-site"}
    response = service.post(
        url(), data={"csrf": csrf(own), "newsletter": ["green"]}, headers=hidden
    )
    assert response.status_code == 403
    assert newsletters(service) == {"daily": "subscribed", "weekly": "subscribed"}
    # the same form from our own page goes through
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = service.post(url(), data={"csrf": csrf(own), "newsletter": ["daily"]}, headers=same)
    assert response.status_code == 200
    assert newsletters(service) == {"daily": "subscribed", "weekly": "unsubscribed"}


@pytest.mark.parametrize(
    "path",
    [
        url()[:-3] + "abc",
        url(purpose="unsubscribe", newsletter="daily"),
        url(purpose="confirm"),
        "/preferences/1",
        "/preferences/2" + url()[len("/preferences/1") :],  # subscriber 1's token, id changed
    ],
    ids=["tampered", "unsubscribe-token", "confirm-token", "malformed", "other-subscriber"],
)
def test_a_bad_token_shows_an_error_and_changes_nothing(service: TestClient, path: str) -> None:
    assert service.get(path).status_code == 400
    assert service.post(path, data={"newsletter": ["green"]}).status_code == 400
    assert newsletters(service) == {"daily": "subscribed", "weekly": "subscribed"}


def data_link(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"https://newsletters\.harbourledger\.example(/data/\S+)", text)
    assert match, text
    return match.group(1)


def ask_by_email(client: TestClient, action: str) -> TestClient:
    """What the holder of the footer link can do: press the page's button (an email goes)."""
    page = client.get(url()).text
    return client.post(f"{url()}/{action}", data={"csrf": csrf(page)})  # type: ignore[return-value]


# -- #11 rule 7: the footer link changes newsletters; the data and erasure need the mailbox -----


def test_the_footer_link_alone_neither_downloads_nor_erases(service: TestClient) -> None:
    for action in ("data", "delete"):
        assert service.get(f"{url()}/{action}").status_code == 405  # no asking page to follow
        response = ask_by_email(service, action)
        assert response.status_code == 200 and "Check your inbox" in response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "jane.doe@example.com" not in response.text and "j***@example.com" in response.text
    assert newsletters(service) == {"daily": "subscribed", "weekly": "subscribed"}
    assert sorted((m["To"], m["Subject"]) for m in outbox(service)) == [
        ("jane.doe@example.com", "Confirm you want to delete your data"),
        ("jane.doe@example.com", "Confirm you want to download your data"),
    ]


def test_download_my_data_by_the_emailed_link_holds_what_we_store(service: TestClient) -> None:
    ask_by_email(service, "data")
    (message,) = outbox(service)
    path = data_link(message)
    ask = service.get(path)  # what a link scanner gets: a page, not the data
    assert ask.status_code == 200 and "Download your data?" in ask.text
    assert "jane.doe" not in ask.text
    assert service.post(path).status_code == 403  # the page's token is needed
    response = service.post(path, data={"csrf": csrf(ask.text)})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    data = json.loads(response.text)
    assert data["subscriber"]["email"] == "jane.doe@example.com"
    assert data["subscriber"]["name"] == "Jane"
    assert [s["newsletter"] for s in data["subscriptions"]] == ["daily", "weekly"]
    assert [e["action"] for e in data["consent_history"]] == ["subscribed", "subscribed"]
    assert newsletters(service)  # a download link never erases


def test_delete_me_by_the_emailed_link_asks_then_erases(service: TestClient) -> None:
    ask_by_email(service, "delete")
    path = data_link(outbox(service)[0])
    ask = service.get(path)
    assert ask.status_code == 200 and "Yes, delete me" in ask.text
    assert newsletters(service)  # the GET changed nothing
    assert service.post(path, data={"csrf": "forged"}).status_code == 403
    assert newsletters(service)
    done = service.post(path, data={"csrf": csrf(ask.text)})
    assert done.status_code == 200 and "We have erased your address" in done.text
    assert list(listing(service.store)) == []  # type: ignore[attr-defined]
    # the address stays suppressed: a re-import or re-subscribe cannot bring it back
    from newsletter.errors import SubscriberError

    with pytest.raises(SubscriberError, match="suppression list"):
        add(service.store, "jane.doe@example.com", "daily")  # type: ignore[attr-defined]
    assert service.get(url()).status_code == 404


def test_a_data_link_expires_after_an_hour(service: TestClient, clock: Clock) -> None:
    ask_by_email(service, "delete")
    path = data_link(outbox(service)[0])
    page = service.get(path)
    clock.advance(3600 + 60)
    expired = service.get(path)
    assert expired.status_code == 400 and "expired" in expired.text
    assert service.post(path, data={"csrf": csrf(page.text)}).status_code == 400
    assert newsletters(service) == {"daily": "subscribed", "weekly": "subscribed"}


@pytest.mark.parametrize("purpose", ["preferences", "unsubscribe", "confirm"])
def test_no_other_link_opens_the_data_page(service: TestClient, purpose: str) -> None:
    token = Signer(WEB_SECRET).make(purpose, 1, "daily" if purpose == "unsubscribe" else None)  # type: ignore[arg-type]
    assert service.get(f"/data/{token}").status_code == 400
    assert service.post(f"/data/{token}", data={"csrf": "x"}).status_code == 400
    assert newsletters(service) == {"daily": "subscribed", "weekly": "subscribed"}


def test_data_emails_are_limited_per_address(service: TestClient, clock: Clock) -> None:
    answers = []
    for _ in range(4):
        answers.append(ask_by_email(service, "data").status_code)
        clock.advance(60)
    assert answers == [200, 200, 200, 429]  # signups_per_address: three a day
    assert len(outbox(service)) == 3


def test_a_suppressed_address_is_not_mailed_a_data_link(service: TestClient) -> None:
    from newsletter.store import people as q

    with service.store.begin() as conn:  # type: ignore[attr-defined]
        person = q.by_id(conn, 1)
        assert person is not None
        q.suppress(conn, [q.Suppression(person.email_hash, "bounce", "t", person.created_at)])
    response = ask_by_email(service, "data")
    assert response.status_code == 410 and "write to us" in response.text
    assert outbox(service) == []


def test_adding_a_newsletter_from_the_page_goes_through_double_opt_in(
    service: TestClient,
) -> None:
    page = service.get(url())
    response = service.post(
        url(), data={"csrf": csrf(page.text), "newsletter": ["daily", "weekly", "green"]}
    )
    assert response.status_code == 200 and "Saved." in response.text
    assert "We have emailed j***@example.com a link to confirm Green Economy" in response.text
    assert "awaiting your confirmation" in response.text
    assert newsletters(service) == {
        "daily": "subscribed",
        "weekly": "subscribed",
        "green": "pending",
    }
    (message,) = outbox(service)
    assert message["To"] == "jane.doe@example.com"
    assert message["Subject"] == "Confirm your subscription to Green Economy"
    path = confirm_link(message)
    done = service.post(path, data={"csrf": csrf(service.get(path).text)})
    assert done.status_code == 200 and "will receive Green Economy." in done.text
    assert newsletters(service)["green"] == "subscribed"


def test_additions_from_the_page_keep_the_per_address_limit(
    service: TestClient, clock: Clock
) -> None:
    for _ in range(4):
        page = service.get(url()).text
        service.post(url(), data={"csrf": csrf(page), "newsletter": ["daily", "weekly"]})
        page = service.get(url()).text
        last = service.post(
            url(), data={"csrf": csrf(page), "newsletter": ["daily", "weekly", "green"]}
        )
        clock.advance(60)
    assert len(outbox(service)) == 3  # signups_per_address: three a day, sign-ups included
    assert "could not email a confirmation for Green Economy" in last.text
    assert newsletters(service)["green"] == "unsubscribed"


def test_a_data_link_is_redacted_from_the_log(
    service: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.audience import selfservice
    from newsletter.errors import StoreError

    ask_by_email(service, "data")
    path = data_link(outbox(service)[0])
    page = service.get(path).text

    def locked(*_args: object) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(selfservice, "data_of", locked)
    with caplog.at_level("ERROR", logger="newsletter.web"):
        assert service.post(path, data={"csrf": csrf(page)}).status_code == 503
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /data/[token]" in text and path.rsplit("/", 1)[1] not in text
