"""A local outbox: one .eml file per message, written atomically, so its existence is its
record. What a new user runs to see a whole send work, without an account anywhere."""

from __future__ import annotations

from pathlib import Path

from newsletter.output import atomic_write, remove_debris
from newsletter.send.backends.base import Outcome
from newsletter.send.message import Message


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
        outcomes = []
        for message in messages:
            try:
                atomic_write(self.path(message.subscriber_id), message.data)
            except OSError as exc:
                outcomes.append(
                    Outcome(
                        "failed",
                        error=f"cannot write {self.path(message.subscriber_id)}: {exc.strerror}",
                    )
                )
            else:
                outcomes.append(Outcome("sent", provider_id=self.path(message.subscriber_id).name))
        return outcomes

    def settle(self, subscriber_ids: list[int]) -> set[int]:
        return {i for i in subscriber_ids if self.path(i).is_file()}

    def close(self) -> None:
        pass
