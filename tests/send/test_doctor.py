"""`newsletter doctor` against a real DNS server on loopback (dnslib), serving a zone where
everything is right, then the same zone (or configuration) with one thing wrong: each check's
exact line, and exit 1 on any ✗."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.send.dkim import public_record, txt_strings
from newsletter.send.doctor import diagnose, resolver_lookup, server_address

D = "harbourledger.example"
RELAY = f"relay.{D}"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dkim_txt(key: rsa.RSAPrivateKey) -> str:
    return "( " + " ".join(f'"{s}"' for s in txt_strings(public_record(key))) + " )"


def good_zone(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """name and type → the record's data, as a zone file writes it."""
    return {
        f"{D} TXT": f'"v=spf1 include:_spf.{D} -all"',
        f"{D} TXT 2": '"google-site-verification=abc"',  # not SPF: ignored
        f"_spf.{D} TXT": '"v=spf1 ip4:192.0.2.0/28 ~all"',
        f"{RELAY} A": "192.0.2.5",
        f"news._domainkey.{D} TXT": dkim_txt(key),
        f"_dmarc.{D} TXT": f'"v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}"',
        f"{D} MX": f"10 mx.{D}.",
        f"mx.{D} A": "192.0.2.25",
        f"em.{D} TXT": '"v=spf1 include:sendgrid.net -all"',
    }


@pytest.fixture
def dns_server() -> Iterator[Callable[[dict[str, str]], str]]:
    """Starts dnslib on 127.0.0.1, port 0, serving the zone given; returns HOST:PORT."""
    from dnslib.server import DNSLogger, DNSServer
    from dnslib.zoneresolver import ZoneResolver

    servers = []

    def start(zone: dict[str, str]) -> str:
        lines = []
        for where, data in zone.items():
            name, rtype = where.split()[:2]
            lines.append(f"{name}. 300 IN {rtype} {data}")
        server = DNSServer(
            ZoneResolver("\n".join(lines)),
            address="127.0.0.1",
            port=0,
            logger=DNSLogger(logf=lambda _: None),
        )
        server.start_thread()
        servers.append(server)
        return f"127.0.0.1:{server.server.server_address[1]}"

    yield start
    for server in servers:
        server.stop()
        server.server.server_close()


@pytest.fixture
def ws(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: rsa.RSAPrivateKey
) -> Path:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (tmp_path / "dkim.pem").write_bytes(pem)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(tmp_path / "dkim.pem"))
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text()
        + f'\n[smtp]\nhost = "{RELAY}"\n\n[dkim]\ndomain = "{D}"\nselector = "news"\n'
    )
    return workspace


def doctor(runner: CliRunner, root: Path, nameserver: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), "doctor", "--nameserver", nameserver, *args])


GOOD = [
    f"✓ SPF: {D} authorises the relay {RELAY} (192.0.2.5)",
    f"✓ DKIM: news._domainkey.{D} matches the configured key",
    f"✓ DMARC: _dmarc.{D} p=quarantine; DKIM and SPF align with From's {D}",
    f"✓ bounces: {D} has an MX (mx.{D})",
    f"✓ From: on {D}",
    f"✓ Reply-To: on {D}",
    "✓ List-Unsubscribe: one-click (RFC 8058: List-Unsubscribe-Post) and a mailto on every message",
    "✓ HTTPS: unsubscribe links go to https://newsletters.harbourledger.example/unsubscribe/…",
]


def test_a_good_setup_passes_every_check(
    runner: CliRunner, ws: Path, dns_server: Callable[[dict[str, str]], str], key: rsa.RSAPrivateKey
) -> None:
    result = doctor(runner, ws, dns_server(good_zone(key)))
    assert result.stdout.splitlines() == GOOD
    assert result.exit_code == 0


def _without(*names: str) -> Callable[[dict[str, str]], None]:
    def change(zone: dict[str, str]) -> None:
        for name in names:
            del zone[name]

    return change


def _set(name: str, data: str) -> Callable[[dict[str, str]], None]:
    def change(zone: dict[str, str]) -> None:
        zone[name] = data

    return change


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)

BROKEN_ZONES = [
    pytest.param(
        _without(f"{D} TXT"),
        0,
        f'✗ SPF: no SPF record for {D}: publish TXT "v=spf1 a:{RELAY} ~all"',
        id="spf-missing",
    ),
    pytest.param(
        _set(f"_spf.{D} TXT", '"v=spf1 ip4:198.51.100.0/24 -all"'),
        0,
        f'✗ SPF: {D} does not authorise the relay {RELAY} (192.0.2.5): add "a:{RELAY}" to its record',
        id="spf-other-network",
    ),
    pytest.param(
        _set(f"_spf.{D} TXT", '"v=spf1 ~ip4:192.0.2.5 -all"'),
        0,
        f'✗ SPF: {D} does not authorise the relay {RELAY} (192.0.2.5): add "a:{RELAY}" to its record',
        id="spf-softfail-only",
    ),
    pytest.param(
        _set(f"{D} TXT 2", '"v=spf1 -all"'),
        0,
        f"✗ SPF: 2 SPF records for {D}: receivers reject that; keep one",
        id="spf-twice",
    ),
    pytest.param(
        _set(f"news._domainkey.{D} TXT", dkim_txt(OTHER_KEY)),
        1,
        f"✗ DKIM: news._domainkey.{D} holds another key than NEWSLETTER_DKIM_KEY_FILE's: publish TXT \"v=DKIM1; k=rsa; p=",
        id="dkim-other-key",
    ),
    pytest.param(
        _set(f"news._domainkey.{D} TXT", '"v=DKIM1; k=rsa; p="'),
        1,
        f'✗ DKIM: news._domainkey.{D} is revoked (empty p=): publish TXT "v=DKIM1; k=rsa; p=',
        id="dkim-revoked",
    ),
    pytest.param(
        _without(f"news._domainkey.{D} TXT"),
        1,
        f'✗ DKIM: no record at news._domainkey.{D}: publish TXT "v=DKIM1; k=rsa; p=',
        id="dkim-missing",
    ),
    pytest.param(
        _without(f"_dmarc.{D} TXT"),
        2,
        f'✗ DMARC: no record at _dmarc.{D}: publish TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{D}"',
        id="dmarc-missing",
    ),
    pytest.param(
        _without(f"{D} MX"),
        3,
        f"✗ bounces: no MX for {D}: publish one (bounces to the From addresses at {D} are lost)",
        id="mx-missing",
    ),
    pytest.param(
        _set(f"{D} MX", "0 ."),
        3,
        f"✗ bounces: {D} has a null MX (it takes no mail): bounces to the From addresses at {D} are lost",
        id="null-mx",
    ),
]


@pytest.mark.parametrize(("change", "index", "line"), BROKEN_ZONES)
def test_each_broken_record_fails_its_check_and_says_what_to_publish(
    runner: CliRunner,
    ws: Path,
    dns_server: Callable[[dict[str, str]], str],
    key: rsa.RSAPrivateKey,
    change: Callable[[dict[str, str]], None],
    index: int,
    line: str,
) -> None:
    zone = good_zone(key)
    change(zone)
    result = doctor(runner, ws, dns_server(zone))
    lines = result.stdout.splitlines()
    assert lines[index].startswith(line)
    if line.endswith("p="):  # the record to publish is the configured key's
        assert lines[index].endswith(
            f'{public_record(key)}" (newsletter dkim keygen prints it in 255-octet strings)'
        )
    else:
        assert lines[index] == line
    assert lines[:index] + lines[index + 1 :] == GOOD[:index] + GOOD[index + 1 :]
    assert result.stderr == "1 of 8 checks failed\n"
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("old", "new", "index", "line"),
    [
        (
            'base_url = "https://',
            'base_url = "http://',
            7,
            "✗ HTTPS: unsubscribe links go to http://newsletters.harbourledger.example: serve it over HTTPS and make [publication] base_url https://",
        ),
        (
            "<newsdesk@harbourledger.example>",
            "<harbourledger.newsdesk@gmail.com>",
            5,
            "✗ Reply-To: harbourledger.newsdesk@gmail.com (a mailbox provider's domain): use an address on your own domain",
        ),
    ],
    ids=["http", "reply-to-gmail"],
)
def test_the_configuration_checks(
    runner: CliRunner,
    ws: Path,
    dns_server: Callable[[dict[str, str]], str],
    key: rsa.RSAPrivateKey,
    old: str,
    new: str,
    index: int,
    line: str,
) -> None:
    config = ws / "newsletter.toml"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))
    result = doctor(runner, ws, dns_server(good_zone(key)))
    lines = result.stdout.splitlines()
    assert lines[index] == line
    assert lines[:index] + lines[index + 1 :] == GOOD[:index] + GOOD[index + 1 :]
    assert result.exit_code == 1


def test_a_from_on_another_domain_than_the_dkim_key_breaks_alignment(
    runner: CliRunner, ws: Path, dns_server: Callable[[dict[str, str]], str], key: rsa.RSAPrivateKey
) -> None:
    config = ws / "newsletter.toml"
    config.write_text(
        config.read_text().replace("<green@harbourledger.example>", "<green@greenletter.example>")
    )
    zone = good_zone(key)
    zone["greenletter.example TXT"] = f'"v=spf1 a:{RELAY} -all"'
    zone["greenletter.example MX"] = f"10 mx.{D}."
    result = doctor(runner, ws, dns_server(zone))
    lines = result.stdout.splitlines()
    assert lines == [
        GOOD[0],
        f"✓ SPF: greenletter.example authorises the relay {RELAY} (192.0.2.5)",
        f"✗ DKIM: news._domainkey.{D} matches the key, but d={D} does not align with From greenletter.example: sign with the From domain",
        GOOD[2],
        '✗ DMARC: no record at _dmarc.greenletter.example: publish TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@greenletter.example"',
        GOOD[3],
        "✓ bounces: greenletter.example has an MX (mx.harbourledger.example)",
        "✗ From: green@greenletter.example (not harbourledger.example): use an address on your own domain",
        *GOOD[5:],
    ]
    assert result.exit_code == 1


def test_sendgrid_needs_its_include_and_its_dkim_records(
    runner: CliRunner, ws: Path, dns_server: Callable[[dict[str, str]], str], key: rsa.RSAPrivateKey
) -> None:
    config = ws / "newsletter.toml"
    config.write_text(config.read_text().split("\n[dkim]")[0])
    zone = good_zone(key)
    server = dns_server(zone)
    lines = doctor(runner, ws, server, "--backend", "sendgrid").stdout.splitlines()
    assert lines[:2] == [
        f'✗ SPF: {D} does not authorise SendGrid: add "include:sendgrid.net" to its record',
        f"✗ DKIM: no key at s1._domainkey.{D}: set up SendGrid's domain authentication (its CNAME records)",
    ]
    zone[f"_spf.{D} TXT"] = f'"v=spf1 include:em.{D} ~all"'  # included two levels down
    zone[f"s1._domainkey.{D} TXT"] = dkim_txt(OTHER_KEY)
    result = doctor(runner, ws, dns_server(zone), "--backend", "sendgrid")
    assert result.stdout.splitlines()[:3] == [
        f"✓ SPF: {D} authorises SendGrid (include:sendgrid.net)",
        f"✓ DKIM: SendGrid signs: s1._domainkey.{D} holds its key",
        f"✓ DMARC: _dmarc.{D} p=quarantine; DKIM and SPF align with From's {D}",
    ]
    assert result.exit_code == 0


def test_spf_a_and_mx_mechanisms_and_redirect(
    runner: CliRunner, ws: Path, dns_server: Callable[[dict[str, str]], str], key: rsa.RSAPrivateKey
) -> None:
    for record in (
        f'"v=spf1 mx a:{RELAY}/30 -all"',
        f'"v=spf1 redirect=_spf.{D}"',
        '"v=spf1 mx -all"',
    ):
        zone = good_zone(key)
        zone[f"{D} TXT"] = record
        if record == '"v=spf1 mx -all"':
            zone[f"mx.{D} A"] = "192.0.2.5"  # the relay is the MX
        result = doctor(runner, ws, dns_server(zone))
        assert result.stdout.splitlines()[0] == GOOD[0], record


def test_without_dkim_configured_it_says_how_to_start(
    runner: CliRunner, ws: Path, dns_server: Callable[[dict[str, str]], str], key: rsa.RSAPrivateKey
) -> None:
    config = ws / "newsletter.toml"
    config.write_text(config.read_text().split("\n[dkim]")[0])
    result = doctor(runner, ws, dns_server(good_zone(key)))
    assert result.stdout.splitlines()[1:3] == [
        "✗ DKIM: not signing: run 'newsletter dkim keygen --selector S', publish its record, and set [dkim] and NEWSLETTER_DKIM_KEY_FILE",
        f"✓ DMARC: _dmarc.{D} p=quarantine; SPF aligns with From's {D}",
    ]
    assert result.exit_code == 1


def test_a_silent_dns_server_fails_the_dns_checks_once_each_and_quickly(ws: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        where = f"127.0.0.1:{silent.getsockname()[1]}"
        checks = diagnose(load_config(ws / "newsletter.toml"), resolver_lookup(where, timeout=0.3))
    lines = [c.line() for c in checks]
    assert lines[:4] == [
        f"✗ SPF: {where} did not answer for {D} TXT (no answer in time)",
        f"✗ DKIM: not checked: {where} did not answer (no answer in time)",
        f"✗ DMARC: not checked: {where} did not answer (no answer in time)",
        f"✗ bounces: not checked: {where} did not answer (no answer in time)",
    ]
    assert lines[4:] == GOOD[4:]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameserver_forms(given: str, expected: tuple[str, int]) -> None:
    assert server_address(given) == expected
