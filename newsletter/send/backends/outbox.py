"""A local outbox: one .eml file per message, written atomically, so its existence is its
record. What a new user runs to see a whole send work, without an account anywhere; the
web service's sign-up confirmations land in one too (`outbox/notices`)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.build.output import atomic_write, remove_debris
from newsletter.send.backends.base import Outcome
from newsletter.send.dkim import DkimSigner, signed, signed_data
from newsletter.send.message import Message, MessageFactory, notice_data

if TYPE_CHECKING:
    from newsletter.audience.notices import Notice

WRITERS = 8


class OutboxBackend:
    name = "outbox"
    batch_size = 200
    parallel = 1
    mime = True

    def __init__(self, folder: Path, dkim: DkimSigner | None = None):
        self.folder = folder
        self.dkim = dkim
        if folder.is_dir():
            remove_debris(folder)  # a killed send's half-written files: never delivered

    def path(self, subscriber_id: int) -> Path:
        return self.folder / f"{subscriber_id:09d}.eml"

    def use(self, factory: MessageFactory) -> None:
        pass  # each message carries its whole MIME bytes

    def send(self, messages: list[Message]) -> list[Outcome]:
        # each file is fsynced: writing several at once keeps the disk busy (fsync releases the GIL)
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            return list(pool.map(self._write_message, messages))

    def _write_message(self, message: Message) -> Outcome:
        return _write(self.path(message.subscriber_id), signed(self.dkim, message))

    def send_notice(self, notice: Notice) -> Outcome:
        """Under a unique name: concurrent sign-ups never touch each other's files."""
        digest = hashlib.sha256(notice.message_id.encode()).hexdigest()[:12]
        path = self.folder / f"{notice.date:%Y%m%dT%H%M%S}-{notice.kind}-{digest}.eml"
        return _write(path, signed_data(self.dkim, notice_data(notice)))

    def settle(self, subscriber_ids: list[int]) -> set[int]:
        return {i for i in subscriber_ids if self.path(i).is_file()}

    def close(self) -> None:
        pass


def _write(path: Path, data: bytes) -> Outcome:
    """The one outbox writer, for issues and notices: the file appears whole or not at all."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        # the folder, not the file: one full disk is one reason, however many it fails
        return Outcome("failed", error=f"cannot write to {path.parent}: {exc.strerror}")
    return Outcome("sent", provider_id=path.name)
