"""Signed link tokens: one purpose each, no address inside, tamper-proof, long-lived."""

from __future__ import annotations

import time

import pytest

from newsletter.audience.tokens import BounceToken, MessageIds, Signer
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


# -- VERP (#14) ---------------------------------------------------------------------------------


def test_a_verp_token_names_the_issue_and_the_subscriber_and_no_address() -> None:
    from newsletter.audience.tokens import BounceToken, VerpSigner

    verp = VerpSigner(SECRET)
    address = verp.address("bounces@news.example.com", "daily/2026-01-05", 42)
    local, domain = address.split("@")
    assert domain == "news.example.com"
    assert local.startswith("bounces+42.daily.20260105.")
    assert len(local) <= 64  # an SMTP local part's limit
    token = local.split("+", 1)[1]
    assert verp.read(token) == BounceToken("daily/2026-01-05", 42)
    # MTAs may fold the case of a local part: it still reads
    assert verp.read(token.upper()) == BounceToken("daily/2026-01-05", 42)
    assert verp.find("bounces@news.example.com", ["x@y.z", f"<{address}>"]) == BounceToken(
        "daily/2026-01-05", 42
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("42.", "43.", 1),  # another subscriber
        lambda t: t.replace("daily", "weekly", 1),  # another newsletter
        lambda t: t.replace("20260105", "20260106", 1),  # another issue
        lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # the MAC
        lambda t: t.rsplit(".", 1)[0],  # no MAC
        lambda t: "",
    ],
    ids=["subscriber", "newsletter", "date", "mac", "no-mac", "empty"],
)
def test_a_tampered_verp_token_is_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    from newsletter.audience.tokens import VerpSigner

    verp = VerpSigner(SECRET)
    token = verp.make("daily/2026-01-05", 42)
    with pytest.raises(TokenError, match="not valid"):
        verp.read(mutate(token))
    assert (
        verp.find("bounces@news.example.com", [f"bounces+{mutate(token)}@news.example.com"]) is None
    )


def test_a_verp_token_is_its_own_purpose() -> None:
    from newsletter.audience.tokens import VerpSigner

    token = VerpSigner(SECRET).make("daily/2026-01-05", 42)
    with pytest.raises(TokenError):
        VerpSigner("t" * 48).read(token)  # another secret
    with pytest.raises(TokenError):
        Signer(SECRET).read("unsubscribe", token)  # not a link token
    link = Signer(SECRET).make("unsubscribe", 42, "daily")
    with pytest.raises(TokenError):
        VerpSigner(SECRET).read(link)


def test_a_message_id_names_its_issue_and_subscriber_and_refuses_tampering() -> None:
    ids = MessageIds("a" * 48)
    made = ids.make("daily/2026-01-05", 42, "harbourledger.example")
    assert made.startswith("<daily.20260105.42.") and made.endswith("@harbourledger.example>")
    assert made == ids.make("daily/2026-01-05", 42, "harbourledger.example")  # stable
    assert ids.read(made) == BounceToken("daily/2026-01-05", 42)
    assert ids.read(made.upper()) == BounceToken("daily/2026-01-05", 42)  # case folded on the way
    assert ids.read(made.replace(".42.", ".43.")) is None  # another subscriber
    assert ids.read(made.replace("20260105", "20260106")) is None  # another issue
    assert MessageIds("b" * 48).read(made) is None  # another secret
    assert ids.read("<abc@example.com>") is None
