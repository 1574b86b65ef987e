"""Issue #11: one reader, one disk, one key must never stop or silently shrink a send.

Each test runs the commands the editor runs and looks at what they see: the output, the
exit status, what the outbox, the SMTP server or the SendGrid server received."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update

from newsletter.cli import cli
from newsletter.model import NAME_MAX, SUBJECT_LIMIT

ISSUE = "daily/2025-05-14"
LONG_NAME = " ".join(f"Name{i:04d}" for i in range(150))  # 1,349 characters


def run(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["-w", str(root), *args], catch_exceptions=False)


def subscribe(root: Path, count: int, newsletter: str = "daily") -> list[str]:
    addresses = [f"r{i:03d}@example.com" for i in range(count)]
    path = root / "readers.csv"
    path.write_text("email,name,tier\n" + "".join(f"{a},Reader {a[1:4]},free\n" for a in addresses))
    result = run(root, "subscribers", "import", str(path), "--newsletter", newsletter)
    assert result.exit_code == 0, result.output
    return addresses


def outbox_files(root: Path) -> list[Path]:
    return sorted((root / "outbox" / ISSUE).glob("*.eml"))


def outbox(root: Path) -> dict[str, email.message.EmailMessage]:
    found = {}
    for path in outbox_files(root):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found[str(message["To"].addresses[0].addr_spec)] = message
    return found


def set_subject(root: Path, subject: str) -> None:
    path = root / "issues" / f"{ISSUE}.md"
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("subject:"))
    lines[at] = f"subject: {subject}\n"
    path.write_text("".join(lines))


# -- rule 1: a poison recipient --------------------------------------------------------------


def test_a_very_long_name_is_folded_and_cut_and_the_send_reaches_everyone(sending: Path) -> None:
    readers = subscribe(sending, 3)
    added = run(
        sending,
        "subscribers",
        "add",
        "long@example.com",
        "--newsletter",
        "daily",
        "--name",
        LONG_NAME,
    )
    assert added.exit_code == 0, added.output
    result = run(sending, "send", ISSUE, "--late")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{ISSUE} via outbox: 4 sent, 0 failed, 0 skipped")
    messages = outbox(sending)
    assert sorted(messages) == sorted([*readers, "long@example.com"])
    long = messages["long@example.com"]
    assert long["To"].addresses[0].display_name == LONG_NAME[:NAME_MAX].rstrip()
    raw = next(p for p in outbox_files(sending) if b"long@example.com" in p.read_bytes())
    head = raw.read_bytes().split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78 + len(b"List-Unsubscribe: ") + 200
    assert all(len(line) <= 998 for line in raw.read_bytes().split(b"\r\n"))


def test_a_recipient_whose_message_cannot_be_built_fails_alone_and_the_send_goes_on(
    sending: Path, db_url: str
) -> None:
    readers = subscribe(sending, 4)
    from newsletter.store import open_store
    from newsletter.store.schema import subscribers

    store = open_store(db_url)  # a row left by an older version: an address mail cannot carry
    bad = "x" * 1100 + "@example.com"
    with store.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email == readers[1]).values(email=bad))
    store.close()
    first = run(sending, "send", ISSUE, "--late")
    assert first.exit_code == 3, first.output
    assert first.stdout.startswith(f"{ISSUE} via outbox: 3 sent, 1 failed, 0 skipped")
    assert first.stderr.startswith(
        f"failed {bad}: the message cannot be built: the To header is 1115 octets long: over 998\n"
    )
    assert sorted(outbox(sending)) == sorted(r for r in readers if r != readers[1])
    again = run(sending, "send", ISSUE, "--late")  # the poison row never blocks a rerun
    assert again.exit_code == 3
    assert again.stdout.startswith(f"{ISSUE} was sent already: 3 sent, 1 failed")


def _longest_subject_the_writer_takes() -> int:
    """Probe the header writer: the longest ASCII subject a test send can carry."""
    from newsletter.errors import MessageError
    from newsletter.send.message import Text, header

    n = 900
    while True:
        try:
            header("Subject", Text("[TEST] " + "s" * (n + 1)))
        except MessageError:
            return n
        n += 1


def test_a_subject_mail_cannot_carry_is_an_error_in_check_and_send_does_not_crash(
    sending: Path,
) -> None:
    assert _longest_subject_the_writer_takes() == SUBJECT_LIMIT
    subscribe(sending, 2)
    set_subject(sending, "w" * (SUBJECT_LIMIT + 1))
    checked = run(sending, "check", str(sending / "issues" / f"{ISSUE}.md"))
    assert checked.exit_code == 1
    assert (
        f"issues/{ISSUE}.md:5: error: subject is {SUBJECT_LIMIT + 1} characters: over "
        f"{SUBJECT_LIMIT}, the longest a mail header can carry" in checked.stderr
    )
    for extra in ([], ["--dry-run"], ["--test", "editor@example.com"]):
        refused = run(sending, "send", ISSUE, "--late", *extra)
        assert refused.exit_code == 1, (extra, refused.output)
        assert refused.stderr.startswith("Error: the issue does not build (1 error(s)); first: ")
        assert "the longest a mail header can carry" in refused.stderr
    assert outbox_files(sending) == []
    set_subject(sending, "w" * SUBJECT_LIMIT)  # at the limit: a warning, and it goes out
    checked = run(sending, "check", str(sending / "issues" / f"{ISSUE}.md"))
    assert checked.exit_code == 0
    assert f"subject is {SUBJECT_LIMIT} characters: over 78, inboxes cut it off" in checked.stdout
    test = run(sending, "send", ISSUE, "--test", "editor@example.com")
    assert test.exit_code == 0, test.output
    sent = run(sending, "send", ISSUE, "--late")
    assert sent.exit_code == 0, sent.output
    assert [m["Subject"] for m in outbox(sending).values()] == ["w" * SUBJECT_LIMIT] * 2


def test_an_import_refuses_a_name_over_the_limit_with_a_reason(sending: Path) -> None:
    path = sending / "readers.csv"
    path.write_text(f"email,name\na@example.com,Ann\nb@example.com,{LONG_NAME}\n")
    result = run(sending, "subscribers", "import", str(path), "--newsletter", "daily")
    assert result.exit_code == 3
    assert result.stderr == (
        f"readers.csv:3: rejected b@example.com: name is {len(LONG_NAME)} characters: "
        f"over {NAME_MAX} (shorten it)\n"
    )
    assert result.stdout.startswith("1 added, 0 updated, 0 unchanged, 0 skipped, 1 rejected")
