"""`newsletter dkim keygen`: a new 2048-bit key, mode 600, never overwritten, and the TXT
record it prints is the one receivers need to verify what we then sign."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from newsletter.cli import cli
from newsletter.send.dkim import public_record


def keygen(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["-w", str(root), "dkim", "keygen", *args])


def printed_record(output: str) -> tuple[str, str, list[str]]:
    """The name and the TXT strings of the zone line that keygen prints."""
    line = next(line for line in output.splitlines() if " IN TXT " in line)
    name = line.split()[0]
    strings = re.findall(r'"([^"]*)"', line)
    return name, "".join(strings), strings


def test_keygen_writes_a_private_key_and_prints_its_record(
    runner: CliRunner, workspace: Path
) -> None:
    result = keygen(runner, workspace, "--selector", "news2026")
    assert result.exit_code == 0, result.output
    path = workspace / "dkim-news2026.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, RSAPrivateKey) and key.key_size == 2048
    lines = result.output.splitlines()
    assert (
        lines[0] == "wrote a new 2048-bit key to dkim-news2026.pem (mode 600; keep it out of git)"
    )
    assert lines[2] == "Publish this DNS TXT record at news2026._domainkey.harbourledger.example:"
    assert lines[-3:] == [
        "Then sign with it:",
        f"  export NEWSLETTER_DKIM_KEY_FILE={path.resolve()}",
        '  newsletter.toml: [dkim] domain = "harbourledger.example", selector = "news2026"',
    ]
    name, record, strings = printed_record(result.output)
    assert name == "news2026._domainkey.harbourledger.example."
    assert record == public_record(key)
    assert record.startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    assert [len(s) for s in strings] == [255, len(record) - 255]  # a 2048-bit key: two strings


def test_keygen_never_overwrites_a_key(runner: CliRunner, workspace: Path) -> None:
    out = workspace / "keys" / "k.pem"
    out.parent.mkdir()
    out.write_text("the old key\n")
    result = keygen(runner, workspace, "--selector", "s1", "--out", str(out))
    assert result.exit_code == 1
    assert result.output == f"Error: {out} already exists: a key is never overwritten\n"
    assert out.read_text() == "the old key\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--selector", "bad_one"],
            "'bad_one' is not a DKIM selector like 'news2026' (letters, digits, '-')",
        ),
        (
            ["--selector", "s", "--domain", "localhost"],
            "'localhost' is not a domain name like 'news.example.com'",
        ),
    ],
    ids=["selector", "domain"],
)
def test_keygen_refuses_names_dns_cannot_hold(
    runner: CliRunner, workspace: Path, args: list[str], message: str
) -> None:
    result = keygen(runner, workspace, *args)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert list(workspace.glob("dkim-*.pem")) == []


def test_a_generated_key_signs_what_the_printed_record_verifies(
    runner: CliRunner, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = keygen(runner, workspace, "--selector", "news2026")
    name, record, _ = printed_record(result.output)
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(workspace / "dkim-news2026.pem"))
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'k.db'}")
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-" + "x" * 40)
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text() + '\n[dkim]\ndomain = "harbourledger.example"\nselector = "news2026"\n'
    )
    ws = ["-w", str(workspace)]
    assert (
        runner.invoke(
            cli, [*ws, "subscribers", "add", "a@example.com", "--newsletter", "daily"]
        ).exit_code
        == 0
    )
    sent = runner.invoke(cli, [*ws, "send", "daily/2025-05-14", "--late"])
    assert sent.exit_code == 0, sent.output
    [eml] = (workspace / "outbox" / "daily" / "2025-05-14").glob("*.eml")

    def lookup(asked: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if asked == name.encode() else None

    assert dkim.verify(eml.read_bytes(), dnsfunc=lookup)
