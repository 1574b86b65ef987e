"""A local outbox: one .eml file per message, written atomically, so its existence is its
record. What a new user runs to see a whole send work, without an account anywhere."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from newsletter.build.output import atomic_write, remove_debris
from newsletter.send.backends.base import Outcome
from newsletter.send.message import Message

WRITERS = 8


class OutboxBackend:
    name = "outbox"
    batch_size = 200
    parallel = 1

    def __init__(self, folder: Path):
        self.folder = folder
        if folder.is_dir():
            remove_debris(folder)  # a killed send's half-written files: never delivered

    def path(self, subscriber_id: int) -> Path:
        return self.folder / f"{subscriber_id:09d}.eml"

    def send(self, messages: list[Message]) -> list[Outcome]:
        # each file is fsynced: writing several at once keeps the disk busy (fsync releases the GIL)
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            return list(pool.map(self._write, messages))

    def _write(self, message: Message) -> Outcome:
        path = self.path(message.subscriber_id)
        try:
            atomic_write(path, message.data)
        except OSError as exc:
            return Outcome("failed", error=f"cannot write {path}: {exc.strerror}")
        return Outcome("sent", provider_id=path.name)

    def settle(self, subscriber_ids: list[int]) -> set[int]:
        return {i for i in subscriber_ids if self.path(i).is_file()}

    def close(self) -> None:
        pass
