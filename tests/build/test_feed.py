"""The publisher's feed read for `newsletter draft`: RSS 2.0 with media: and dc:, Atom with
HTML content and relative links, JSON Feed 1.1; from disk and over real HTTP on loopback;
a malformed feed, a 404, a page that is no feed and a server that never answers."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from newsletter.build import feed
from newsletter.errors import FeedError
from tests.build.conftest import FEEDS, FeedServer

HKT = dt.timezone(dt.timedelta(hours=8))


def test_rss_items_with_media_and_dublin_core() -> None:
    items = feed.load(str(FEEDS / "rss.xml")).items
    port, banks, no_link = items[0], items[1], items[2]
    assert port.title == "Port volumes rise for a third month"
    assert port.author == "Jane Doe"  # dc:creator
    assert port.categories == ("Markets", "Shipping", "premium")
    assert port.published == dt.datetime(2025, 5, 20, 6, 10, tzinfo=HKT)
    assert port.published.utcoffset() == dt.timedelta(hours=8)  # the item's own offset kept
    assert port.image == "https://news.harbourledger.example/img/port.jpg"
    assert port.image_alt == "Cranes over stacked containers at Kwai Chung"
    assert port.image_credit == "Photo: VCG"
    assert port.description_html is not None and "<b>rose</b>" in port.description_html
    # media:description before the description: feedparser swaps them; we do not
    assert banks.description_html is not None and "repricing" in banks.description_html
    assert banks.image_alt == "The central bank's headquarters"
    assert banks.fields["ledger:premium"] == "true"
    assert no_link.link is None
    solar = items[4]
    assert solar.image == "https://news.harbourledger.example/img/solar.png"  # not the mp3


def test_atom_html_content_and_a_relative_link_served(feed_server: FeedServer) -> None:
    [entry] = feed.load(f"{feed_server.url}/feeds/atom.xml").items
    assert entry.link == f"{feed_server.url}/2025-05-20/tech/penang-chips"
    assert entry.description_html is not None
    assert '<a href="../related/penang-2024">' in entry.description_html  # left for draft
    assert entry.author == "Lee Wai-man"
    assert entry.published == dt.datetime(2025, 5, 20, 6, 45, tzinfo=HKT)


def test_atom_relative_link_from_a_file_has_no_base() -> None:
    [entry] = feed.load(str(FEEDS / "atom.xml")).items
    assert entry.link == "/2025-05-20/tech/penang-chips"
    assert entry.base is None


def test_json_feed(feed_server: FeedServer) -> None:
    loaded = feed.load(f"{feed_server.url}/feeds/feed.json")
    assert loaded.title == "The Harbour Ledger"
    first, second = loaded.items
    assert first.title == "Property sales pick up in Kowloon"
    assert first.author == "Chloé Durand"
    assert first.categories == ("Property", "Economy")
    assert first.image == "https://news.harbourledger.example/img/towers.jpg"
    assert first.fields["ledger:premium"] == "True"
    assert first.published == dt.datetime(2025, 5, 20, 6, tzinfo=HKT)
    assert second.link is None
    assert second.description_html == "<p>No link here.</p>"


def test_a_malformed_feed_names_the_file_and_the_reason() -> None:
    with pytest.raises(FeedError) as caught:
        feed.load(str(FEEDS / "malformed.xml"))
    assert str(caught.value).startswith(f"{FEEDS / 'malformed.xml'}: not a readable feed: ")
    assert "not well-formed" in str(caught.value)


def test_a_404_is_an_error_naming_the_url(feed_server: FeedServer) -> None:
    url = f"{feed_server.url}/missing"
    with pytest.raises(FeedError, match="answered HTTP 404 Not Found") as caught:
        feed.load(url)
    assert caught.value.path == url


def test_a_web_page_is_not_a_feed(feed_server: FeedServer) -> None:
    with pytest.raises(FeedError, match="page: not a readable feed: "):
        feed.load(f"{feed_server.url}/page")


def test_json_without_a_version_is_not_a_feed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.json"
    path.write_text('{"items": []}')
    with pytest.raises(FeedError, match="without a JSON Feed 'version'"):
        feed.load(str(path))


def test_a_server_that_never_answers_times_out(feed_server: FeedServer) -> None:
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"did not answer within 0.3 s"):
        feed.load(f"{feed_server.url}/stall", timeout=0.3)
    assert time.monotonic() - started < 5


def test_nobody_listening_is_a_network_error() -> None:
    from tests.conftest import free_port

    with pytest.raises(FeedError, match="cannot fetch the feed"):
        feed.load(f"http://127.0.0.1:{free_port()}/feed.xml", timeout=2)
