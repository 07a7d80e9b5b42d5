"""Putting events on the bus, each on the topic and key the configured strategy gives it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strato.bus import Bus
from strato.catalog.model.events import Event
from strato.catalog.model.topics import Strategy, topic_for, topic_for_event
from strato.errors import Unavailable


class EventPublisher:
    """Publishes ESGF events on a started bus; the caller owns the bus's lifetime."""

    def __init__(self, bus: Bus, strategy: Strategy = "single", *, connected: bool = True) -> None:
        self.bus = bus
        self.strategy = strategy
        # A node connects its bus in the background and says so here once it has.
        self.connected = connected

    async def publish(
        self, events: Sequence[Event], *, items: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        """``items`` (by id) are the items as this node has them: a patch, which carries no
        item, is routed by its item when the id alone does not say the topic (drs)."""
        if not self.connected:
            raise Unavailable("this node is not connected to its event bus yet; try again soon")
        # Routed before anything is sent, so an event that cannot be routed (InvalidInput)
        # stops the whole request rather than half of it.
        batch: list[tuple[str, str, Mapping[str, Any] | bytes]] = []
        for event in events:
            known = (items or {}).get(event.item_id) if event.item is None else None
            if known is not None:
                topic, key = topic_for({**known, "id": event.item_id}, self.strategy)
            else:
                topic, key = topic_for_event(event, self.strategy)
            batch.append((topic, key, event.to_json()))
        try:
            await self.bus.publish_many(batch)
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise Unavailable(f"the event bus cannot take events now: {exc}") from None
