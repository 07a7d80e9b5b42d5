"""An index node's consumer: events from the bus into the item store, failures to errors.

Delivery is at-least-once and the applier idempotent; the order of the steps is what
keeps the contract:

1. fetch a batch; what does not parse as an event is reported to the error topic;
2. apply the rest in one transaction, in a worker thread (the database must not block
   the event loop). Rejected events are published to the error topic *before* that
   transaction commits, so no verdict is remembered that was not reported;
3. acknowledge the batch.

A crash before step 3 delivers the batch again. Events already applied or rejected are
then duplicates: nothing is written and nothing reported a second time. The one way an
error event can repeat is a crash between its publication and the commit; none is lost.

A batch that fails (an exception, not a verdict) is retried with exponential backoff; if
it keeps failing it is split in halves until the events that fail on their own are
found. Each of those goes to the error topic (500, processing-failed) and is remembered
as rejected; the rest is applied. A database or bus that cannot be reached is an outage,
not a poison event: the batch is held and retried, with capped backoff, until it can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from strato.bus import Bus, Message, Subscription
from strato.bus.names import encode_event, validate_group, validate_topic
from strato.catalog.ingest.apply import Outcome, apply_events, record_failures
from strato.catalog.ingest.consumer_stats import ConsumerStats, Counts, describe
from strato.catalog.model.events import Event, error_event, parse_event
from strato.catalog.model.item_limits import TITLE as ITEM_TOO_LARGE
from strato.catalog.model.item_limits import oversize_message, without_content
from strato.catalog.model.topics import default_topics, subscription_pattern
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.db import busy
from strato.errors import InvalidInput, Unavailable
from strato.retry import Backoff
from strato.settings import Settings

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
# Waits while the database or the bus is out: from max(retry_backoff, this), doubling.
OUTAGE_FIRST_WAIT = 0.5
OUTAGE_MAX_WAIT = 30.0
RETRY_MAX_WAIT = 30.0
LOG_EVERY = 1.0
# A publish of error events from inside the database transaction waits at most this long.
PUBLISH_TIMEOUT = 60.0


class _BusDown(Exception):
    """Error events could not be published: an outage to wait out, like the database's."""


class _Stopped(Exception):
    """Stop was asked for while a batch waited for a retry; it stays unacknowledged."""


@dataclass(frozen=True)
class _Report:
    key: str
    body: bytes


class Consumer:
    """Reads a node's events from ``bus`` (topics matching ``topics``) into ``store``."""

    def __init__(
        self,
        store: ItemStore,
        bus: Bus,
        *,
        group: str,
        topics: str,
        error_topic: str = "esgf.errors",
        batch_size: int = 500,
        retries: int = 3,
        retry_backoff: float = 0.2,
        node_name: str = "local",
        from_beginning: bool = True,
        fetch_timeout: float = 1.0,
        max_item_bytes: int | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch size must be 1 to {MAX_BATCH}, not {batch_size}")
        if retries < 0:
            raise InvalidInput(f"retries must not be negative, not {retries}")
        if retry_backoff < 0 or fetch_timeout < 0:
            raise InvalidInput("retry_backoff and fetch_timeout must not be negative")
        self.store = store
        self.bus = bus
        self.group = validate_group(group)
        self.error_topic = validate_topic(error_topic)
        self.topics = topics
        self.pattern = subscription_pattern(topics, self.error_topic)
        self.batch_size = batch_size
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.node_name = node_name
        self.from_beginning = from_beginning
        self.fetch_timeout = fetch_timeout
        self.max_item_bytes = max_item_bytes
        self.stats = ConsumerStats()
        self.started_at: datetime | None = None
        self._subscription: Subscription | None = None
        self._stop = asyncio.Event()
        self._running = False
        self._outages = 0
        self._window = Counts()
        self._window_start = time.monotonic()

    # --- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished and acknowledged."""
        self._stop = stop
        self._running = True
        self.started_at = datetime.now(UTC)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self.run_once(self.fetch_timeout)
                    failures = 0
                except InvalidInput:
                    raise  # a subscription that can never work: the caller must hear of it
                except Exception as exc:  # the bus failed us; a node keeps trying
                    self._note_error(exc)
                    if isinstance(exc, Unavailable | OSError | TimeoutError):
                        log.warning("event bus trouble (%s); subscribing again", describe(exc))
                    else:
                        log.exception("consumer of group %s failed; going on", self.group)
                    await self._drop_subscription()
                    try:
                        await self._pause(self._outage_wait(failures))
                    except _Stopped:
                        break
                    failures += 1
        finally:
            self._running = False
            await self.close()

    async def run_once(self, timeout: float = 1.0) -> int:
        """Fetch one batch (waiting up to ``timeout`` s for it), apply it, acknowledge it.

        Returns how many messages were handled and acknowledged: 0 when nothing came, or
        when a stop interrupted a batch waiting for a retry (it will be delivered again).
        """
        subscription = await self._subscribed()
        messages = await subscription.fetch(self.batch_size, timeout)
        if not messages:
            return 0
        counts = Counts(messages=len(messages))
        try:
            await self._handle(messages, counts)
        except _Stopped:
            log.info(
                "stopping with a batch of %d messages unfinished; it will be delivered again",
                len(messages),
            )
            return 0
        await subscription.ack(messages)
        self._batch_done(counts)
        return len(messages)

    async def close(self) -> None:
        """Close the subscription; what was fetched and not acknowledged goes back."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {
            "node": self.node_name,
            "group": self.group,
            "topics": self.topics,
            "error_topic": self.error_topic,
            "running": self._running,
            "started_at": _iso(self.started_at),
            "messages": s.messages,
            "batches": s.batches,
            "applied": s.applied,
            "duplicates": s.duplicates,
            "rejected": s.rejected,
            "invalid": s.invalid,
            "failed": s.failed,
            "outage": s.outage,
            "last_error": s.last_error,
            "last_error_at": _iso(s.last_error_at),
            "last_batch_at": _iso(s.last_batch_at),
        }

    async def _subscribed(self) -> Subscription:
        if self._subscription is None:
            self._subscription = await self.bus.subscribe(
                self.group, pattern=self.pattern, from_beginning=self.from_beginning
            )
            log.info(
                "node %s consumes topics %s as group %s (errors to %s)",
                self.node_name,
                self.topics,
                self.group,
                self.error_topic,
            )
        return self._subscription

    async def _drop_subscription(self) -> None:
        try:
            await self.close()
        except Exception as exc:  # closing a broken subscription may fail as well
            log.debug("closing the subscription failed: %s", describe(exc))

    # --- one batch ------------------------------------------------------------------------

    async def _handle(self, messages: Sequence[Message], counts: Counts) -> None:
        # Parsing a batch takes long enough to stall a web server sharing the loop.
        valid, invalid = await asyncio.to_thread(self._parse, messages)
        counts.invalid += len(invalid)
        counts.rejected += len(invalid)
        if valid:
            await self._apply_with_retries(valid, invalid, counts)
        elif invalid:
            await self._publish_until_done(invalid)

    def _parse(
        self, messages: Sequence[Message]
    ) -> tuple[list[tuple[Message, Event]], list[_Report]]:
        valid: list[tuple[Message, Event]] = []
        invalid: list[_Report] = []
        for message in messages:
            if message.topic == self.error_topic:
                continue  # the pattern leaves it out; a backend that does not is ignored
            limit = self.max_item_bytes
            oversize = None if limit is None else oversize_message(message.value, limit)
            if oversize is not None:
                invalid.append(self._report(_trimmed(message), 413, ITEM_TOO_LARGE, oversize))
                continue
            try:
                valid.append((message, parse_event(message.value)))
            except InvalidInput as exc:
                invalid.append(
                    self._report(message, 400, "invalid-event", exc.detail, errors=exc.errors)
                )
        return valid, invalid

    async def _apply_with_retries(
        self, items: list[tuple[Message, Event]], invalid: list[_Report], counts: Counts
    ) -> None:
        attempt = 0
        while True:
            try:
                outcomes = await self._apply(items, invalid)
            except Exception as exc:  # any failure: an outage, or a candidate for poison
                if await self._is_outage(exc):
                    await self._wait_outage(exc)
                    continue
                attempt += 1
                self._note_error(exc)
                if attempt > self.retries:
                    break
                delay = self._retry_wait(attempt)
                log.warning(
                    "a batch of %d events failed (%s); retry %d of %d in %.2f s",
                    len(items),
                    describe(exc),
                    attempt,
                    self.retries,
                    delay,
                )
                await self._pause(delay)
                continue
            self._count(outcomes, counts)
            return
        log.warning(
            "a batch of %d events failed %d times: looking for the events that fail alone",
            len(items),
            attempt,
        )
        if invalid:
            await self._publish_until_done(invalid)
        await self._bisect(items, counts)

    async def _bisect(self, items: list[tuple[Message, Event]], counts: Counts) -> None:
        """Apply what can be of ``items``, in order; the events that fail alone go to errors."""
        if len(items) == 1:
            await self._isolate(items[0], counts)
            return
        middle = len(items) // 2
        left, right = items[:middle], items[middle:]
        if await self._attempt(left, counts):
            # The whole failed and its first half did not: the second half is the suspect.
            await self._bisect(right, counts)
            return
        await self._bisect(left, counts)
        if not await self._attempt(right, counts):
            await self._bisect(right, counts)

    async def _attempt(self, items: list[tuple[Message, Event]], counts: Counts) -> bool:
        """One try (outages waited out); False when the events failed."""
        while True:
            try:
                outcomes = await self._apply(items, [])
            except Exception as exc:  # an outage, or the poison is in there
                if await self._is_outage(exc):
                    await self._wait_outage(exc)
                    continue
                self._note_error(exc)
                return False
            self._count(outcomes, counts)
            return True

    async def _isolate(self, item: tuple[Message, Event], counts: Counts) -> None:
        """One event alone, with every retry; if it still fails it goes to errors."""
        message, event = item
        attempts = 0
        while True:
            try:
                outcomes = await self._apply([item], [])
            except Exception as exc:  # an outage, or this event is poison
                if await self._is_outage(exc):
                    await self._wait_outage(exc)
                    continue
                attempts += 1
                self._note_error(exc)
                if attempts > self.retries:
                    failure = exc
                    break
                await self._pause(self._retry_wait(attempts))
                continue
            self._count(outcomes, counts)
            return
        detail = describe(failure)
        meta = event.metadata
        log.error(
            "event %s (item %s) failed %d times alone and goes to %s: %s",
            meta.event_id,
            event.item_id,
            attempts,
            self.error_topic,
            detail,
        )
        report = self._report(message, 500, "processing-failed", detail, attempts=attempts)
        await self._publish_until_done([report])
        outcome = Outcome(
            meta.event_id, meta.request_id, "rejected", 500, "processing-failed", detail
        )
        await self._remember_failure(event, outcome)
        counts.failed += 1

    async def _remember_failure(self, event: Event, outcome: Outcome) -> None:
        while True:
            try:
                await asyncio.to_thread(record_failures, self.store, [(event, outcome)])
                return
            except Exception as exc:  # reported already; remembering it is a bonus
                if await self._is_outage(exc):
                    await self._wait_outage(exc)
                    continue
                log.warning(
                    "event %s went to errors but its outcome could not be recorded: %s",
                    outcome.event_id,
                    describe(exc),
                )
                return

    async def _apply(
        self, items: list[tuple[Message, Event]], reports: list[_Report]
    ) -> list[Outcome]:
        loop = asyncio.get_running_loop()

        def report_rejections(outcomes: list[Outcome]) -> None:
            # Runs in the worker thread, inside the transaction: publish on the loop and
            # wait, so a failed publish rolls the batch back.
            pending = list(reports)
            for (message, _), outcome in zip(items, outcomes, strict=True):
                if outcome.status == "rejected":
                    if outcome.title == ITEM_TOO_LARGE:
                        message = _trimmed(message)
                    pending.append(
                        self._report(message, outcome.http_status, outcome.title, outcome.detail)
                    )
            if not pending:
                return
            future = asyncio.run_coroutine_threadsafe(self._publish(pending), loop)
            try:
                future.result(PUBLISH_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise _BusDown("the event bus did not take the error events in time") from None

        events = [event for _, event in items]
        outcomes = await asyncio.to_thread(
            apply_events,
            self.store,
            events,
            before_commit=report_rejections,
            max_item_bytes=self.max_item_bytes,
        )
        if self.stats.outage is not None:
            log.warning("reachable again; consuming")
            self.stats.outage = None
        self._outages = 0
        return outcomes

    # --- error events ---------------------------------------------------------------------

    def _report(
        self,
        message: Message,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        attempts: int | None = None,
    ) -> _Report:
        def build(original: bytes | dict[str, Any]) -> bytes:
            body = error_event(original, status=status, title=title, detail=detail)
            # RFC 9457 extension members: who reported it, and what exactly was wrong.
            problem = body["error"]
            problem["node"] = self.node_name
            if errors:
                problem["errors"] = errors
            if attempts is not None:
                problem["attempts"] = attempts
            return encode_event(body)

        try:
            return _Report(message.key, build(message.value))
        except InvalidInput:
            # The original decodes to what JSON cannot carry (NaN): carried as text.
            text_value = message.value.decode("utf-8", "replace")
            return _Report(message.key, build({"original": text_value}))

    async def _publish(self, reports: Sequence[_Report]) -> None:
        batch: list[tuple[str, str, Any]] = [(self.error_topic, r.key, r.body) for r in reports]
        try:
            await self.bus.publish_many(batch)
        except (Unavailable, OSError, TimeoutError) as exc:
            raise _BusDown(describe(exc)) from exc

    async def _publish_until_done(self, reports: Sequence[_Report]) -> None:
        while True:
            try:
                await self._publish(reports)
                return
            except _BusDown as exc:
                await self._wait_outage(exc)

    # --- outages, retries and waits ---------------------------------------------------------

    async def _is_outage(self, exc: Exception) -> bool:
        """Whether ``exc`` says the database or the bus is out, rather than this batch bad."""
        if isinstance(exc, _BusDown | DisconnectionError | PoolTimeout):
            return True
        if isinstance(exc, DBAPIError):
            if exc.connection_invalidated:
                return True
            if busy(exc):
                return True  # under another writer for longer than the driver waits
        try:
            await asyncio.to_thread(self._ping)
        except Exception:  # whatever it is, the database does not answer
            return True
        return False

    def _ping(self) -> None:
        with self.store.sessions() as session:
            session.execute(text("SELECT 1"))

    async def _wait_outage(self, exc: Exception) -> None:
        what = "the event bus" if isinstance(exc, _BusDown) else "the database"
        self.stats.outage = f"{what} is unreachable: {describe(exc)}"
        self._note_error(exc)
        delay = self._outage_wait(self._outages)
        self._outages += 1
        log.warning("%s; the batch is held, next try in %.1f s", self.stats.outage, delay)
        await self._pause(delay)

    def _outage_wait(self, outages: int) -> float:
        """The wait after ``outages`` earlier waits for this outage."""
        first = max(self.retry_backoff, OUTAGE_FIRST_WAIT)
        return Backoff(first, OUTAGE_MAX_WAIT).delay(outages + 1)

    def _retry_wait(self, attempt: int) -> float:
        return Backoff(self.retry_backoff, RETRY_MAX_WAIT).delay(attempt)

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless stop is asked for: then raise _Stopped."""
        if seconds > 0 and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
        if self._stop.is_set():
            raise _Stopped

    # --- counting -------------------------------------------------------------------------

    def _count(self, outcomes: Sequence[Outcome], counts: Counts) -> None:
        for outcome in outcomes:
            if outcome.status == "applied":
                counts.applied += 1
            elif outcome.status == "duplicate":
                counts.duplicates += 1
            else:
                counts.rejected += 1

    def _note_error(self, exc: BaseException) -> None:
        self.stats.last_error = describe(exc)
        self.stats.last_error_at = datetime.now(UTC)

    def _batch_done(self, counts: Counts) -> None:
        s = self.stats
        s.batches += 1
        s.messages += counts.messages
        s.applied += counts.applied
        s.duplicates += counts.duplicates
        s.rejected += counts.rejected
        s.invalid += counts.invalid
        s.failed += counts.failed
        s.last_batch_at = datetime.now(UTC)
        self._window.add(counts)
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed < LOG_EVERY:
            return
        w = self._window
        log.info(
            "%d events in %.1f s (%.0f/s): %d applied, %d duplicates, %d rejected, %d failed",
            w.messages,
            elapsed,
            w.messages / elapsed,
            w.applied,
            w.duplicates,
            w.rejected,
            w.failed,
        )
        self._window = Counts()
        self._window_start = now


def _trimmed(message: Message) -> Message:
    """An oversize event without its item, for the error topic."""
    return replace(message, value=without_content(message.value))


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def consumer_from_settings(
    settings: Settings,
    store: ItemStore,
    bus: Bus,
    *,
    node_name: str | None = None,
    group: str | None = None,
    topics: str | None = None,
    batch_size: int | None = None,
    from_beginning: bool = True,
    fetch_timeout: float = 1.0,
) -> Consumer:
    """The consumer the catalog settings describe; keyword arguments override it."""
    catalog = CatalogSettings.of(settings)
    name = settings.node_name if node_name is None else node_name
    if group is None:
        group = catalog.group or name
    if topics is None:
        topics = catalog.topics or default_topics(catalog.topic_strategy)
    return Consumer(
        store,
        bus,
        group=group,
        topics=topics,
        error_topic=catalog.error_topic,
        batch_size=catalog.batch_size if batch_size is None else batch_size,
        retries=catalog.retries,
        retry_backoff=catalog.retry_backoff,
        node_name=name,
        from_beginning=from_beginning,
        fetch_timeout=fetch_timeout,
        max_item_bytes=catalog.max_item_bytes,
    )


__all__ = ["Consumer", "ConsumerStats", "consumer_from_settings"]
