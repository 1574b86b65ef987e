"""#11 rule 6 through the service: sixteen spellings of one address are one address to the
per-address confirmation limit, and an erased address signs up again in no case."""

from __future__ import annotations

from starlette.testclient import TestClient

from newsletter.audience.subscribers import forget
from tests.conftest import Clock
from tests.web.test_subscribe import outbox, sign_up, status


def test_sixteen_spellings_of_one_address_get_three_confirmations(
    service: TestClient, clock: Clock
) -> None:
    variants = [
        "".join(c.upper() if n >> i & 1 else c for i, c in enumerate("eage")) + "r@example.net"
        for n in range(16)
    ]
    for address in variants:
        assert sign_up(service, address, "daily").status_code == 200
        clock.advance(60)
    mailed = outbox(service)
    assert [m["To"] for m in mailed] == ["eager@example.net"] * 3  # signups_per_address
    assert status(service, "eager@example.net") == {"daily": "pending"}


def test_an_erased_address_signs_up_in_no_case(service: TestClient) -> None:
    forget(service.store, "Zoe.Kwan@example.net")  # type: ignore[attr-defined]
    for address in ("zoe.kwan@example.net", "ZOE.KWAN@EXAMPLE.NET", "Zoe.Kwan@example.net"):
        assert sign_up(service, address, "daily").status_code == 200
    assert outbox(service) == []
    assert status(service, "zoe.kwan@example.net") == {}
