"""Bounces from a real MTA (#14): a throwaway Postfix (Debian's) on loopback, with its own
config directory and queue: `bounce.example` accepts any recipient and bounces the unknown ones
at delivery (a real RFC 3464 report, sent back to the VERP envelope sender); `refuse.example`
refuses unknown recipients at RCPT TO (a real immediate 550 5.1.1); the bounce address's
mailbox is a Maildir that `bounces process` reads. Postfix's master must start as root:
skipped with a reason otherwise, or where Postfix is missing; a failure when CI is set."""

from __future__ import annotations

import json
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.audience.tokens import BounceToken, VerpSigner
from newsletter.cli import cli
from tests.audience.test_mailboxes import suppressed
from tests.conftest import free_port, use_smtp

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MASTER_CF = Path("/etc/postfix/master.cf")
BOUNCES = "bounces@news.example.com"
ISSUE = "daily/2025-05-14"
SECRET = "test-secret-" + "x" * 40  # the `sending` fixture's


@dataclass
class Postfix:
    port: int
    root: Path

    def maildir(self, domain: str, user: str) -> Path:
        return self.root / "mail" / domain / user

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""


def _postfix_or_skip() -> str:
    reason = ""
    if not (os.path.isfile(POSTFIX) and MASTER_CF.is_file()):
        reason = "Postfix not found (apt-get install postfix)"
    elif os.geteuid() != 0:
        reason = "Postfix's master process must be started as root"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTFIX


def _postfix(binary: str, conf: Path, command: str) -> None:
    subprocess.run(
        [binary, "-c", str(conf), command],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture
def postfix() -> Iterator[Postfix]:
    binary = _postfix_or_skip()
    root = Path(tempfile.mkdtemp(prefix="newsletter-postfix-"))  # Postfix's users reach it
    os.chmod(root, 0o755)
    conf, mail = root / "conf", root / "mail"
    for folder in (conf, mail, root / "queue", root / "data"):
        folder.mkdir()
    owner = pwd.getpwnam("postfix")
    os.chown(mail, owner.pw_uid, owner.pw_gid)
    os.chown(root / "data", owner.pw_uid, owner.pw_gid)
    port = free_port()
    (conf / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.bounce.example
mydomain = bounce.example
myorigin = bounce.example
mydestination = bounce.example
mynetworks = 127.0.0.0/8
relayhost =
# bounce.example: every recipient accepted, the unknown ones bounced at delivery
local_recipient_maps =
alias_maps =
alias_database =
# the bounce address's domain and refuse.example: mailboxes (Maildirs) from a table; unknown
# recipients refused at RCPT TO
virtual_mailbox_domains = news.example.com, refuse.example
virtual_mailbox_maps = texthash:{conf}/mailboxes
virtual_mailbox_base = {mail}
virtual_uid_maps = static:{owner.pw_uid}
virtual_gid_maps = static:{owner.pw_gid}
recipient_delimiter = +
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
smtputf8_enable = no
biff = no
"""
    )
    (conf / "mailboxes").write_text(
        "bounces@news.example.com news.example.com/bounces/\nreader@refuse.example refuse.example/reader/\n"
    )
    master = []
    for line in MASTER_CF.read_text().splitlines():
        fields = line.split()
        if line.startswith("smtp ") and len(fields) > 1 and fields[1] == "inet":
            line = f"127.0.0.1:{port} inet n - n - - smtpd"  # loopback, a high port
        elif len(fields) >= 8 and not line[0].isspace() and not line.startswith("#"):
            fields[4] = "n"  # no chroot: there is no copy of /etc in the queue directory
            line = " ".join(fields)
        master.append(line)
    (conf / "master.cf").write_text("\n".join(master) + "\n")
    try:
        _postfix(binary, conf, "start")
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Postfix did not start:\n{Postfix(port, root).log()}"
                    ) from None
                time.sleep(0.2)
        yield Postfix(port, root)
    finally:
        try:
            _postfix(binary, conf, "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _wait_for(folder: Path, n: int, server: Postfix) -> list[bytes]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (folder / "new").is_dir():
            box = mailbox.Maildir(folder, create=False)
            found = [box.get_bytes(k) for k in box.keys()]
            if len(found) >= n:
                return found
        time.sleep(0.2)
    raise AssertionError(f"no mail in {folder}:\n{server.log()}")


def test_a_real_postfix_refuses_and_bounces_and_both_suppress(
    postfix: Postfix, sending: Path
) -> None:
    runner = CliRunner()
    use_smtp(sending, postfix.port, bounce_address=BOUNCES, retries=0)
    readers = sending / "r.csv"
    readers.write_text(
        "email\nreader@refuse.example\nnobody-here@refuse.example\ngone-reader@bounce.example\n"
    )
    runner.invoke(
        cli, ["-w", str(sending), "subscribers", "import", str(readers), "--newsletter", "daily"]
    )
    args = ["-w", str(sending), "send", ISSUE, "--late", "--backend", "smtp", "--yes", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 3, result.output + result.stderr
    report = json.loads(result.stdout)
    assert (report["sent"], report["failed"]) == (2, 1), postfix.log()
    [failure] = report["failures"]
    assert failure["email"] == "nobody-here@refuse.example"
    assert failure["error"].startswith("550 5.1.1 <nobody-here@refuse.example>: Recipient address")
    # the immediate refusal suppressed at once
    assert suppressed(sending) == {"nobody-here@refuse.example": "bounce"}

    # the delivered message: its Return-Path is the VERP address, naming its reader
    [delivered] = _wait_for(postfix.maildir("refuse.example", "reader"), 1, postfix)
    return_path = message_from_bytes(delivered)["Return-Path"].strip("<>")
    local = return_path.split("@")[0]
    token = VerpSigner(SECRET).read(local.split("+", 1)[1])
    assert token.issue == ISSUE

    # Postfix bounced gone-reader@bounce.example at delivery: its report came back to the
    # VERP address of that message, into the bounce mailbox
    bounce_box = postfix.maildir("news.example.com", "bounces")
    [bounce] = _wait_for(bounce_box, 1, postfix)
    parsed = message_from_bytes(bounce)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed["Delivered-To"].startswith("bounces+")
    processed = runner.invoke(
        cli, ["-w", str(sending), "bounces", "process", str(bounce_box), "--json"]
    )
    assert processed.exit_code == 0, processed.output
    figures = json.loads(processed.stdout)
    assert (figures["read"], figures["hard"], figures["suppressed"]) == (1, 1, 1)
    assert suppressed(sending) == {
        "nobody-here@refuse.example": "bounce",
        "gone-reader@bounce.example": "bounce",
    }
    assert len(mailbox.Maildir(bounce_box, create=False)) == 0  # filed in `processed`
    again = runner.invoke(cli, ["-w", str(sending), "bounces", "process", str(bounce_box)])
    assert "0 message(s)" in again.stdout
    stats = runner.invoke(cli, ["-w", str(sending), "stats", ISSUE, "--json"])
    assert json.loads(stats.stdout)["bounced"] == 2  # the refusal and the report
    assert BounceToken(ISSUE, token.subscriber_id) == token
