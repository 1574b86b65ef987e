"""DKIM signing: what the outbox writes and what a real SMTP server (aiosmtpd) receives
verifies with dkimpy's own verifier, the public key served through its DNS hook; one byte
changed in the body or in a signed header breaks it; no [dkim], no signature."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from newsletter.cli import cli
from newsletter.config import DkimSettings
from newsletter.send.dkim import SIGNED, DkimSigner, public_record, txt_strings
from tests.conftest import SmtpRecorder, use_smtp

ISSUE = "daily/2025-05-14"
DOMAIN = "harbourledger.example"


@pytest.fixture(scope="session")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dns_for(key: rsa.RSAPrivateKey, selector: str = "news") -> Callable[..., bytes | None]:
    """dkimpy's DNS lookup hook: our record at <selector>._domainkey.<domain>, else nothing."""
    record = public_record(key).encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{selector}._domainkey.{DOMAIN}.".encode() else None

    return lookup


@pytest.fixture
def signing(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: rsa.RSAPrivateKey
) -> Path:
    """The sample workspace, ready to send (SQLite), with [dkim] and its key file."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'dkim.db'}")
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-" + "x" * 40)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    (tmp_path / "dkim.pem").write_bytes(pem)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(tmp_path / "dkim.pem"))
    config = workspace / "newsletter.toml"
    config.write_text(config.read_text() + f'\n[dkim]\ndomain = "{DOMAIN}"\nselector = "news"\n')
    return workspace


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), *args], catch_exceptions=False)


def subscribe(runner: CliRunner, root: Path) -> None:
    path = root / "readers.csv"
    path.write_text(
        "email,name,tier\nfree@example.com,Fay  Free,free\npaid@example.com,Pat,premium\n"
    )
    result = run(runner, root, "subscribers", "import", str(path), "--newsletter", "daily")
    assert result.exit_code == 0, result.output


def outbox(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((root / "outbox" / ISSUE).glob("*.eml"))]


def verifies(data: bytes, key: rsa.RSAPrivateKey) -> bool:
    return bool(dkim.verify(data, dnsfunc=dns_for(key)))


def test_the_outbox_signs_every_message_and_dkimpy_verifies_them(
    runner: CliRunner, signing: Path, key: rsa.RSAPrivateKey
) -> None:
    subscribe(runner, signing)
    result = run(runner, signing, "send", ISSUE, "--late")
    assert result.exit_code == 0, result.output
    messages = outbox(signing)
    assert len(messages) == 2  # a free and a premium one: two shared bodies
    for data in messages:
        assert data.startswith(
            b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n d=harbourledger.example;"
        )
        assert verifies(data, key)
        checked = dkim.DKIM(data)
        assert checked.verify(dnsfunc=dns_for(key))
        assert checked.signature_fields[b"s"] == b"news"
        assert checked.include_headers == SIGNED
    assert not verifies(messages[0], rsa.generate_private_key(public_exponent=65537, key_size=1024))


def test_one_byte_changed_in_the_body_or_a_signed_header_breaks_the_signature(
    runner: CliRunner, signing: Path, key: rsa.RSAPrivateKey
) -> None:
    subscribe(runner, signing)
    assert run(runner, signing, "send", ISSUE, "--late").exit_code == 0
    data = outbox(signing)[0]
    head, _, body = data.partition(b"\r\n\r\n")
    middle = len(body) // 2
    flipped = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
    assert not verifies(head + b"\r\n\r\n" + flipped, key)
    for name in (b"Subject: ", b"From: ", b"To: ", b"List-Unsubscribe: <", b"Date: "):
        at = data.index(b"\r\n" + name) + 2 + len(name)
        changed = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
        assert not verifies(changed, key), name
    # an unsigned header may change: the signature covers only its list
    issue = b"X-Newsletter-Issue: daily/2025-05-14"
    assert verifies(data.replace(issue, issue[:-1] + b"5"), key)
    at = data.index(b"\r\n" + issue) + 2
    # and a header the message lacks but the signature lists cannot be added
    assert not verifies(data[:at] + b"Reply-To: someone@evil.example\r\n" + data[at:], key)


def test_a_message_arriving_through_a_real_smtp_server_verifies(
    runner: CliRunner, signing: Path, key: rsa.RSAPrivateKey, smtp_server: SmtpRecorder
) -> None:
    use_smtp(signing, smtp_server.port)
    subscribe(runner, signing)
    result = run(runner, signing, "send", ISSUE, "--late", "--backend", "smtp", "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.received()) == ["free@example.com", "paid@example.com"]
    for _, _, data in smtp_server.messages:
        assert data.startswith(b"DKIM-Signature: ")
        assert verifies(data, key)


def test_our_signature_is_the_one_dkimpy_writes_itself(
    key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch, runner: CliRunner, signing: Path
) -> None:
    """Body hash from pieces, header hash by dkimpy's functions, RSA by OpenSSL: the same
    bytes as dkimpy's own (slow) `sign` of the whole message at the same second."""
    subscribe(runner, signing)
    assert run(runner, signing, "send", ISSUE, "--late").exit_code == 0
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    # "Fay  Free" (two spaces) takes the canonicaliser's slow path, "Pat" the quick one
    messages = outbox(signing)
    assert len(messages) == 2
    for data in messages:
        ours, rest = data.split(b"\r\nFrom: ", 1)
        message = b"From: " + rest
        when = int(dict(dkim.util.parse_tag_value(ours.split(b": ", 1)[1]))[b"t"])
        monkeypatch.setattr(dkim.time, "time", lambda: when)  # noqa: B023
        theirs = dkim.sign(
            message,
            b"news",
            DOMAIN.encode(),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED),
        )
        assert ours + b"\r\n" == theirs


def test_a_notice_is_signed_too(key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner(DkimSettings(domain=DOMAIN, selector="news"), key, clock=lambda: 1.7e9)
    data = (
        b"From: a@harbourledger.example\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello  \r\n\r\n"
    )
    assert verifies(signer.data(data), key)


def test_without_dkim_nothing_is_signed(runner: CliRunner, signing: Path) -> None:
    config = signing / "newsletter.toml"
    config.write_text(config.read_text().split("\n[dkim]")[0])
    subscribe(runner, signing)
    assert run(runner, signing, "send", ISSUE, "--late").exit_code == 0
    assert [data[:6] for data in outbox(signing)] == [b"From: "] * 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file (make one with 'newsletter dkim keygen')"),
        (b"hello", "not a PEM RSA private key"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "not a PEM RSA private key",
        ),
        ("ec", "not an RSA key (DKIM signs with rsa-sha256)"),
        ("encrypted", "the key is encrypted: DKIM needs it without a passphrase"),
        ("folder", "cannot read the key file: Is a directory"),
    ],
    ids=["missing", "not-pem", "bad-pem", "not-rsa", "encrypted", "folder"],
)
def test_a_bad_key_file_stops_the_send_before_it_starts(
    runner: CliRunner,
    signing: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes | str | None,
    expected: str,
) -> None:
    path = tmp_path / "bad.pem"
    if content == "ec":
        from cryptography.hazmat.primitives.asymmetric import ec

        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    if content == "encrypted":
        from cryptography.hazmat.primitives.serialization import BestAvailableEncryption

        content = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"passphrase")
        )
    if content == "folder":
        path.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(path))
    subscribe(runner, signing)
    result = runner.invoke(cli, ["-w", str(signing), "send", ISSUE, "--late"])
    assert result.exit_code == 1
    assert result.output == f"Error: NEWSLETTER_DKIM_KEY_FILE={path}: {expected}\n"
    assert outbox(signing) == []


def test_dkim_set_without_the_key_variable_says_what_to_set(
    runner: CliRunner, signing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_DKIM_KEY_FILE")
    subscribe(runner, signing)
    result = runner.invoke(cli, ["-w", str(signing), "send", ISSUE, "--late"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: [dkim] is set but NEWSLETTER_DKIM_KEY_FILE is not: set it to the private key's "
        "file (make one with 'newsletter dkim keygen')\n"
    )


def test_long_records_are_cut_into_255_octet_strings() -> None:
    record = "v=DKIM1; k=rsa; p=" + "A" * 392
    strings = txt_strings(record)
    assert [len(s) for s in strings] == [255, 155]
    assert "".join(strings) == record


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'domain = "localhost"\nselector = "news"',
            "dkim.domain: 'localhost' is not a domain name like 'news.example.com'",
        ),
        (
            'domain = "harbourledger.example"\nselector = "a b"',
            "dkim.selector: 'a b' is not a DKIM selector like 'news2026' (letters, digits, '-')",
        ),
        ('domain = "harbourledger.example"', "missing required key 'selector' in dkim"),
        (
            'domain = "harbourledger.example"\nselector = "s"\nkey = "-----BEGIN"',
            "unknown key 'key' in dkim",
        ),
    ],
    ids=["domain", "selector", "no-selector", "no-key-in-config"],
)
def test_a_bad_dkim_table_is_a_config_error_naming_the_key(
    runner: CliRunner, workspace: Path, table: str, message: str
) -> None:
    config = workspace / "newsletter.toml"
    config.write_text(config.read_text() + f"\n[dkim]\n{table}\n")
    result = runner.invoke(cli, ["-w", str(workspace), "check"])
    assert result.exit_code == 1
    assert "newsletter.toml:" in result.output and f": error: {message}\n" in result.output
