"""`bounces process imap://…` (#14) against a real IMAP server: Debian's dovecot, started
here on loopback with its own config, a passwd-file user and a throwaway self-signed
certificate (IMAPS, the default). Skipped with a reason where dovecot is missing; a failure
when CI is set."""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.audience.mailboxes import ImapSource
from newsletter.cli import cli
from tests.audience.test_mailboxes import ISSUE, dsn, note, sent, suppressed
from tests.conftest import free_port

__all__ = ["sent"]  # the fixture, shared with the Maildir tests

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "imap-test-password-0123456789"


@dataclass
class Imap:
    port: int
    cert: Path
    user: str = "bounces"

    def connect(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.cert))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context)
        imap.login(self.user, PASSWORD)
        return imap

    def append(self, messages: list[bytes]) -> None:
        imap = self.connect()
        for data in messages:
            imap.append("INBOX", "", imaplib.Time2Internaldate(time.time()), data)
        imap.logout()

    def count(self, folder: str) -> int:
        imap = self.connect()
        status, data = imap.select(folder, readonly=True)
        imap.logout()
        return int(data[0]) if status == "OK" and data[0] else 0


def _dovecot_or_skip() -> str:
    if not (os.path.isfile(DOVECOT) and os.access(DOVECOT, os.X_OK)):
        reason = "dovecot not found (apt-get install dovecot-imapd)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return DOVECOT


@pytest.fixture
def imap_server() -> Iterator[Imap]:
    with _dovecot() as server:
        yield server


@pytest.fixture
def imap_server_without_move() -> Iterator[Imap]:
    """A server that does not announce MOVE (RFC 6851), as older ones do not."""
    capabilities = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS NAMESPACE"
    with _dovecot(f"imap_capability = {capabilities}\n") as server:
        yield server


@contextlib.contextmanager
def _dovecot(extra: str = "") -> Iterator[Imap]:
    binary = _dovecot_or_skip()
    # not under pytest's tmp (mode 700): dovecot's own users must reach the files
    root = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    os.chmod(root, 0o755)
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    me = pwd.getpwuid(os.getuid()).pw_name
    mail_user = "dovecot" if os.getuid() == 0 else me  # dovecot never gives mail to uid 0
    uid, gid = pwd.getpwnam(mail_user).pw_uid, pwd.getpwnam(mail_user).pw_gid
    home = root / "home"
    home.mkdir()
    os.chown(home, uid, gid)
    (root / "passwd").write_text(f"bounces:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}\n")
    port = free_port()
    login_user = "dovenull" if os.getuid() == 0 else me
    config = root / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
default_login_user = {login_user}
default_internal_user = {mail_user}
first_valid_uid = {min(uid, 100)}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
{extra}"""
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                shutil.rmtree(root, ignore_errors=True)
                raise RuntimeError(f"dovecot did not start: {log}") from None
            time.sleep(0.1)
    try:
        yield Imap(port, cert)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _process(ws: Path, url: str, *extra: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["-w", str(ws), "bounces", "process", url, "--json", *extra])
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_an_imap_folder_over_tls_is_processed_once_and_filed_away(
    imap_server: Imap,
    sent: dict[str, str],
    sending: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(imap_server.cert))  # OpenSSL's own: the test CA
    imap_server.append(
        [
            dsn(sent["r1@example.com"], "r1@example.com", "5.1.1", 1),
            note("Out of office", 2, Auto_Submitted="auto-replied"),
            note("A question", 3),
        ]
    )
    url = f"imap://bounces@127.0.0.1:{imap_server.port}/INBOX"
    report = _process(sending, url)
    assert (report["read"], report["hard"], report["autoreplies"]) == (3, 1, 1)
    assert [u["subject"] for u in report["unknown"]] == ["A question"]  # type: ignore[index]
    assert suppressed(sending) == {"r1@example.com": "bounce"}
    assert (imap_server.count("INBOX"), imap_server.count("processed")) == (1, 2)
    # again: nothing new; the unknown one is listed again, still in the inbox
    again = _process(sending, url)
    assert (again["read"], again["hard"], len(again["unknown"])) == (1, 0, 1)  # type: ignore[arg-type]
    stats = CliRunner().invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    assert json.loads(stats.stdout)["bounced"] == 1


def test_a_wrong_imap_password_is_one_line(
    imap_server: Imap, sending: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "wrong-password")
    monkeypatch.setenv("SSL_CERT_FILE", str(imap_server.cert))
    url = f"imap://bounces@127.0.0.1:{imap_server.port}/INBOX"
    result = CliRunner().invoke(cli, ["-w", str(sending), "bounces", "process", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: imap://bounces@127.0.0.1:{imap_server.port}/INBOX:")
    assert "wrong-password" not in result.stderr and result.stderr.count("\n") == 1


def test_an_untrusted_certificate_is_refused(
    imap_server: Imap, sending: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMAPS verifies the server: without the test CA, the self-signed certificate fails."""
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", PASSWORD)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = f"imap://bounces@127.0.0.1:{imap_server.port}/INBOX"
    result = CliRunner().invoke(cli, ["-w", str(sending), "bounces", "process", url])
    assert result.exit_code == 1
    assert "certificate verify failed" in result.stderr


def test_the_server_moves_messages_when_it_can_and_copies_them_when_not(
    imap_server: Imap,
    imap_server_without_move: Imap,
    sent: dict[str, str],
    sending: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dovecot announces MOVE only after the login: it is used (atomic); a server without
    it gets COPY, \\Deleted and EXPUNGE, and the inbox ends the same."""
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", PASSWORD)
    for server, moves in ((imap_server, True), (imap_server_without_move, False)):
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        url = f"imap://bounces@127.0.0.1:{server.port}/INBOX"
        source = ImapSource(url, "tls", PASSWORD)
        assert source.moves is moves
        source.close()
        server.append([dsn(sent["r1@example.com"], "r1@example.com", "5.1.1", 1)])
        report = _process(sending, url)
        assert report["read"] == 1
        assert (server.count("INBOX"), server.count("processed")) == (0, 1)
