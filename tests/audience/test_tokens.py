"""Signed link tokens: one purpose each, no address inside, tamper-proof, long-lived."""

from __future__ import annotations

import time

import pytest

from newsletter.audience.tokens import Signer
from newsletter.errors import TokenError

SECRET = "s" * 48


def test_a_token_reads_back_and_names_no_address() -> None:
    signer = Signer(SECRET)
    token = signer.make("unsubscribe", 42, "daily")
    assert signer.read("unsubscribe", token).subscriber_id == 42
    assert signer.read("unsubscribe", token).newsletter == "daily"
    assert token.startswith("42.daily.")  # the id and the newsletter, never an address


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: (
            t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:]
        ),  # signature changed (not its last char: padding bits)
        lambda t: "43" + t[2:],  # payload changed to subscriber 43
        lambda t: t.replace(".", "", 1),
        lambda t: "",
        lambda t: "not-a-token",
        lambda t: t + "%00",
    ],
    ids=["signature", "payload", "structure", "empty", "garbage", "nul"],
)
def test_a_tampered_token_does_not_verify(mutate) -> None:  # type: ignore[no-untyped-def]
    signer = Signer(SECRET)
    token = signer.make("unsubscribe", 42, "daily")
    with pytest.raises(TokenError, match=r"^this link is not valid$"):
        signer.read("unsubscribe", mutate(token))


def test_a_token_for_one_purpose_or_secret_does_not_verify_for_another() -> None:
    signer = Signer(SECRET)
    token = signer.make("preferences", 42)
    with pytest.raises(TokenError):
        signer.read("unsubscribe", token)
    with pytest.raises(TokenError):
        Signer("t" * 48).read("preferences", token)


def test_unsubscribe_tokens_outlive_a_year_and_confirm_tokens_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = Signer(SECRET)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3 * 365 * 24 * 3600)
    old_unsubscribe = signer.make("unsubscribe", 7, "daily")
    old_confirm = signer.make("confirm", 7, "daily")
    monkeypatch.setattr(time, "time", real)
    assert signer.read("unsubscribe", old_unsubscribe).subscriber_id == 7
    with pytest.raises(TokenError, match=r"^this link has expired$"):
        signer.read("confirm", old_confirm)


def test_tokens_are_exactly_what_itsdangerous_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from itsdangerous import TimestampSigner

    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.5)
    ours = Signer(SECRET).make("unsubscribe", 42, "daily")
    reference = TimestampSigner(SECRET, salt="newsletter.unsubscribe", digest_method=hashlib.sha256)
    assert ours == reference.sign("42.daily").decode()


def test_a_confirm_token_names_its_newsletters_and_a_data_token_lasts_an_hour() -> None:
    now = [1_700_000_000.0]
    signer = Signer(SECRET, lambda: now[0])
    token = signer.make("confirm", 42, names=["daily", "green"])
    assert signer.read("confirm", token).names == ("daily", "green")
    assert signer.read("confirm", token).newsletter is None  # not an unsubscribe link's one
    with pytest.raises(ValueError):
        signer.make("confirm", 42, names=["not.a.key"])
    data = signer.make("data", 42, names=["download"])
    now[0] += 3601
    with pytest.raises(TokenError, match=r"^this link has expired$"):
        signer.read("data", data, max_age=10**9)  # no caller can stretch it
