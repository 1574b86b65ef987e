"""What every backend provides, and what it reports for each message.

The sender and `send.notice` use a backend only through this protocol: each backend
implements all of it (a no-op where a part means nothing to it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from newsletter.send.message import Message, MessageFactory

if TYPE_CHECKING:
    from newsletter.audience.notices import Notice

State = Literal["sent", "failed", "unknown"]


@dataclass(frozen=True)
class Refusal:
    """The receiving server refused this recipient itself (SMTP 5xx, or 4xx until the
    retries ran out): a bounce known at once, recorded as a delivery event (#14)."""

    code: int
    reply: str  # "550 5.1.1 No such user here"
    permanent: bool


@dataclass(frozen=True)
class Outcome:
    state: State
    provider_id: str = ""
    error: str = ""
    refusal: Refusal | None = None


class Backend(Protocol):
    name: str
    batch_size: int  # messages handed over, and marked in flight, together
    parallel: int  # batches in flight at once
    mime: bool  # hands over each message's MIME bytes (SMTP, outbox), not only its values

    def use(self, factory: MessageFactory) -> None:
        """The issue's message factory, before the first send: API backends send its shared
        bodies and each recipient's values rather than whole messages."""
        ...

    def send(self, messages: list[Message]) -> list[Outcome]:
        """One outcome per message, in order. Never raises for one bad recipient; raises
        BackendRefused when the provider refuses the hand-over itself (nothing went out)."""
        ...

    def send_notice(self, notice: Notice) -> Outcome:
        """One notice (a sign-up confirmation) to one person, at once. Never raises for a
        refusal: it is that notice's outcome."""
        ...

    def settle(self, subscriber_ids: list[int]) -> set[int] | None:
        """After a crash: which of these provably went out (None: the backend cannot tell)."""
        ...

    def close(self) -> None: ...
