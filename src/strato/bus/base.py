"""The contract of an event bus backend.

- ``publish(topic, key, event)`` appends an event; events with the same key keep
  their order for every consumer.
- ``subscribe(group, topics=..., pattern=...)`` gives a :class:`Subscription` of a
  consumer group: members of one group share the work, each group sees every event.
- Delivery is at-least-once: a consumer acknowledges after processing; what it did not
  acknowledge before it stopped is delivered again to the group.
- Offsets are committed per group; ``from_beginning`` replays a topic for a new group.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from strato.errors import InvalidInput

if TYPE_CHECKING:
    from strato.bus.urls import BusURL


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes
    # Position in the backend (sequence, offset); with ``partition``, what an ack commits.
    offset: int
    partition: int = 0
    timestamp: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The event, decoded; malformed JSON raises InvalidInput (for the error topic)."""
        try:
            return json.loads(self.value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"event is not valid JSON: {exc}") from None


def encode(event: Mapping[str, Any] | bytes) -> bytes:
    # NaN and Infinity are not JSON; other consumers (and ESGF's) would reject them.
    if isinstance(event, bytes):
        return event
    return json.dumps(event, separators=(",", ":"), allow_nan=False).encode()


class Subscription(ABC):
    """What one member of a consumer group receives."""

    @abstractmethod
    async def fetch(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first."""

    @abstractmethod
    async def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge processed messages; the group will not be given them again."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            for message in await self.fetch():
                yield message


class Bus(ABC):
    """An event bus backend. One opened by URL declares its scheme in the ``strato.buses``
    entry points (see :mod:`strato.bus.urls`) and writes ``from_url``."""

    # How a URL of this backend is written, for the message listing the forms.
    url_form: ClassVar[str] = ""

    @classmethod
    def from_url(cls, url: BusURL, data_dir: Path) -> Bus:
        """The bus ``url`` names, not started; relative paths are in ``data_dir``."""
        raise url.invalid(f"is not a URL {cls.__name__} is opened by")

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, key: str, event: Mapping[str, Any] | bytes) -> None: ...

    def problem(self) -> str | None:
        """Why a started bus cannot be used right now (its connection is lost and being
        re-established), or None; for readiness checks. Backends that know override it."""
        return None

    async def publish_many(
        self, items: Sequence[tuple[str, str, Mapping[str, Any] | bytes]]
    ) -> None:
        """Several events at once; backends override this to batch."""
        for topic, key, event in items:
            await self.publish(topic, key, event)

    @abstractmethod
    async def subscribe(
        self,
        group: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> Subscription:
        """A member of ``group`` reading ``topics`` or every topic whose name matches the
        regular expression ``pattern`` (also topics created later)."""

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
