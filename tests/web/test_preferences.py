"""The preferences page: one form for the newsletters, the tier, "download my data" and
"delete me" behind a confirming POST, CSRF on every form, tokens that must be right."""

from __future__ import annotations

import functools
import json
import re

import pytest
from starlette.testclient import TestClient

from newsletter.audience.subscribers import add, listing
from newsletter.audience.tokens import Signer
from tests.conftest import WEB_SECRET


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
    assert newsletters(service) == {
        "daily": "unsubscribed",
        "weekly": "subscribed",
        "green": "subscribed",
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


def test_download_my_data_asks_first_and_holds_what_we_store(service: TestClient) -> None:
    ask = service.get(url() + "/data")  # what a link scanner gets: a page, not the data
    assert ask.status_code == 200 and "Download your data?" in ask.text
    assert "jane.doe" not in ask.text
    assert service.post(url() + "/data").status_code == 403  # the page's token is needed
    response = service.post(url() + "/data", data={"csrf": csrf(ask.text)})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    data = json.loads(response.text)
    assert data["subscriber"]["email"] == "jane.doe@example.com"
    assert data["subscriber"]["name"] == "Jane"
    assert [s["newsletter"] for s in data["subscriptions"]] == ["daily", "weekly"]
    assert [e["action"] for e in data["consent_history"]] == ["subscribed", "subscribed"]


def test_delete_me_asks_first_then_erases(service: TestClient) -> None:
    ask = service.get(url() + "/delete")
    assert ask.status_code == 200 and "Yes, delete me" in ask.text
    assert newsletters(service)  # the GET changed nothing
    done = service.post(url() + "/delete", data={"csrf": csrf(ask.text)})
    assert done.status_code == 200 and "We have erased your address" in done.text
    assert list(listing(service.store)) == []  # type: ignore[attr-defined]
    # the address stays suppressed: a re-import or re-subscribe cannot bring it back
    from newsletter.errors import SubscriberError

    with pytest.raises(SubscriberError, match="suppression list"):
        add(service.store, "jane.doe@example.com", "daily")  # type: ignore[attr-defined]
    assert service.get(url()).status_code == 404
