"""One index node at run time: its bus connection, its publisher and its consumer task.

The bus is connected in the background, so a node whose bus is down still serves
searches (writes answer 503 until it is back) and starts consuming once it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strato.bus import Bus
from strato.bus.factory import bus_shown
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.search.search import CatalogSearch
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.retry import Backoff
from strato.settings import Settings

if TYPE_CHECKING:
    from strato.catalog.ingest.consumer import Consumer
    from strato.catalog.ingest.datalink import DatasetLink

log = logging.getLogger(__name__)

# Between attempts to reach a bus that is down: short at first, then every half minute.
_RECONNECT = Backoff(0.5, 30.0)


@dataclass
class CatalogNode:
    settings: Settings
    store: ItemStore
    search: CatalogSearch
    bus: Bus
    publisher: EventPublisher
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    consumer: Consumer | None = None
    datalink: DatasetLink | None = None
    last_error: str | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.settings.node_name

    def status(self) -> dict[str, Any]:
        consumer = self.consumer
        return {
            "node": self.name,
            "bus": "connected" if self.connected.is_set() else "connecting",
            "bus_error": self.last_error,
            "consumer": None if consumer is None else consumer.status(),
        }

    async def bus_problem(self) -> str | None:
        """Why this node cannot use its bus now, or None (a readiness check)."""
        if not self.connected.is_set() and self.last_error is None and self._tasks:
            # The first attempt is under way, as just after start: give it a moment.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), 1.0)
        if self.last_error is not None:
            return self.last_error
        if not self.connected.is_set():
            return f"event bus {bus_shown(self.settings)} is not connected yet"
        return self.bus.problem()

    async def start(self, *, consume: bool) -> None:
        self._stop.clear()
        task = asyncio.create_task(self._connect_and_consume(consume))
        task.add_done_callback(self._report)
        self._tasks.append(task)

    def _report(self, task: asyncio.Task[Any]) -> None:
        # Said when it happens, not at shutdown: a node that stopped consuming must show it.
        if not task.cancelled() and task.exception() is not None:
            self.last_error = f"consumer stopped: {task.exception()}"
            log.error("the catalog consumer stopped", exc_info=task.exception())

    async def _connect_and_consume(self, consume: bool) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                await self.bus.start()
                break
            except Exception as exc:  # any failure to connect means: try again
                self.last_error = str(exc) or type(exc).__name__
                delay = _RECONNECT.delay(attempt + 1)
                # Said once, with what it means and what to do; the retries are quiet
                # (/readyz says the bus is failing for as long as it is).
                if attempt == 0:
                    log.warning(
                        "%s: catalog writes answer 503 and no events are consumed until it "
                        "connects; strato keeps trying. Start the bus, or point "
                        "STRATO_BUS_URL at one that runs.",
                        self.last_error,
                    )
                else:
                    log.debug("%s; retrying in %.1f s", self.last_error, delay)
                attempt += 1
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    continue
                return
        if attempt:
            log.info("event bus %s connected", bus_shown(self.settings))
        self.last_error = None
        self.connected.set()
        self.publisher.connected = True
        if not consume or self._stop.is_set():
            return
        sync = CatalogSettings.of(self.settings).dataset_sync_interval
        if self.datalink is not None and sync > 0:
            self._tasks.append(asyncio.create_task(self._sync_datasets(self.datalink)))
        from strato.catalog.ingest.consumer import consumer_from_settings

        self.consumer = consumer_from_settings(self.settings, self.store, self.bus)
        await self.consumer.run(self._stop)

    async def _sync_datasets(self, link: DatasetLink) -> None:
        from strato.catalog.ingest.datalink import summarise

        interval = CatalogSettings.of(self.settings).dataset_sync_interval
        while not self._stop.is_set():
            try:
                # Opening datasets reads files: not on the event loop.
                events = await asyncio.to_thread(link.changes)
                if events:
                    await self.publisher.publish(events)
                    log.info("served datasets published to the catalog: %s", summarise(events))
            except Exception:
                log.exception("publishing served datasets to the catalog failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, 30)
            except TimeoutError:
                task.cancel()
            except Exception:
                log.exception("the catalog node's background work failed")
        self._tasks.clear()
        if self.connected.is_set():
            self.connected.clear()
            self.publisher.connected = False
            await self.bus.close()
