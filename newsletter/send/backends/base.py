"""What every backend provides, and what it reports for each message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from newsletter.send.message import Message

State = Literal["sent", "failed", "unknown"]


@dataclass(frozen=True)
class Outcome:
    state: State
    provider_id: str = ""
    error: str = ""


class Backend(Protocol):
    name: str
    batch_size: int  # messages handed over, and marked in flight, together
    parallel: int  # batches in flight at once

    def send(self, messages: list[Message]) -> list[Outcome]:
        """One outcome per message, in order. Never raises for one bad recipient."""
        ...

    def settle(self, subscriber_ids: list[int]) -> set[int] | None:
        """After a crash: which of these provably went out (None: the backend cannot tell)."""
        ...

    def close(self) -> None: ...
