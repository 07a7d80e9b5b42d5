"""The bus on Kafka (any broker speaking the Kafka protocol), through aiokafka.

Events are keyed: the producer's partitioner sends every event of one key to one
partition, and a partition is read in order by one member of a group, so per-key order
is partition order. The producer waits for all in-sync replicas (``acks="all"``) and
aiokafka keeps at most one batch per partition in flight, so retries do not reorder.

Topics are created on first use with the admin client (``partitions``,
``replication_factor``), because brokers often run with auto-creation disabled.

Offsets are committed on every ``ack``, never automatically, per partition: the next
offset after the acknowledged prefix of what was fetched. When a rebalance takes
partitions away, what was not acknowledged is delivered again to their next owner;
an ack that comes while the group rebalances commits nothing (its messages come again).

Pattern subscriptions are aiokafka's: topics created later are noticed at the next
metadata refresh (``metadata_max_age_ms``), which also starts a rebalance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from strato.bus.base import Bus, Message, Subscription
from strato.bus.names import (
    encode_event,
    validate_group,
    validate_key,
    validate_subscription,
    validate_topic,
)
from strato.bus.urls import BusURL
from strato.errors import InvalidInput, Unavailable
from strato.redact import mask_secrets, mask_url

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class _ConnectErrors(logging.Filter):
    """aiokafka logs an error line for each failed connection while it bootstraps; the
    bus says once what failed instead, with the reason kept here ("Connection refused")."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Unable connect to"):
            return True
        reason = message.split('": ', 1)[-1]
        # "[Errno 111] Connect call failed (...)" without uvloop: the errno says it best.
        found = re.match(r"\[Errno (-?\d+)\] (.*)", reason)
        if found is not None:
            number = int(found.group(1))
            reason = os.strerror(number) if number > 0 else found.group(2)
        self.last = reason
        return False


class KafkaBus(Bus):
    url_form = (
        "kafka://host:9092[,host2:9092][?partitions=3&replication_factor=1&session_timeout_ms=...]"
    )
    URL_OPTIONS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "client_id": str,
        "partitions": int,
        "replication_factor": int,
        "session_timeout_ms": int,
        "heartbeat_interval_ms": int,
        "metadata_max_age_ms": int,
        "request_timeout_ms": int,
    }

    @classmethod
    def from_url(cls, url: BusURL, data_dir: Path) -> KafkaBus:
        return cls(",".join(url.hosts()), **url.options(cls.URL_OPTIONS))

    def __init__(
        self,
        bootstrap: str = "127.0.0.1:9092",
        *,
        client_id: str = "strato",
        partitions: int = 3,
        replication_factor: int = 1,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        metadata_max_age_ms: int = 30_000,
        request_timeout_ms: int = 30_000,
    ) -> None:
        if not bootstrap.strip():
            raise InvalidInput("Kafka bootstrap servers are empty")
        if partitions < 1 or replication_factor < 1:
            raise InvalidInput("partitions and replication_factor must be at least 1")
        if min(session_timeout_ms, heartbeat_interval_ms, metadata_max_age_ms) < 1:
            raise InvalidInput("Kafka timeouts must be positive")
        if heartbeat_interval_ms >= session_timeout_ms:
            raise InvalidInput("heartbeat_interval_ms must be below session_timeout_ms")
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.metadata_max_age_ms = metadata_max_age_ms
        self.request_timeout_ms = request_timeout_ms
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._subscriptions: set[KafkaSubscription] = set()

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            acks="all",
            request_timeout_ms=self.request_timeout_ms,
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=self.request_timeout_ms,
        )
        attempts = _ConnectErrors()
        client_log = logging.getLogger("aiokafka")
        client_log.addFilter(attempts)
        try:
            await producer.start()
            await admin.start()
        except KafkaError as exc:
            await producer.stop()
            await admin.close()
            shown = mask_url(f"kafka://{self.bootstrap}")
            reason = attempts.last or mask_secrets(str(exc))
            # Worded as the other backends say it, for the node's and the CLI's one line.
            raise Unavailable(f"event bus {shown} is unreachable ({reason})") from None
        finally:
            client_log.removeFilter(attempts)
        self._producer, self._admin = producer, admin

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        producer, admin = self._producer, self._admin
        self._producer = self._admin = None
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()

    def _started(self) -> tuple[AIOKafkaProducer, AIOKafkaAdminClient]:
        if self._producer is None or self._admin is None:
            raise Unavailable("the Kafka bus is not started")
        return self._producer, self._admin

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet."""
        _, admin = self._started()
        missing = sorted({validate_topic(t) for t in topics} - self._known_topics)
        if not missing:
            return
        async with self._topic_lock:
            missing = [t for t in missing if t not in self._known_topics]
            if not missing:
                return
            new = [NewTopic(t, self.partitions, self.replication_factor) for t in missing]
            try:
                response = await admin.create_topics(new)
            except KafkaError as exc:
                raise Unavailable(f"cannot create Kafka topics {missing}: {exc}") from None
            for topic, code, message in _topic_errors(response):
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise Unavailable(f"cannot create Kafka topic {topic}: {message} ({code})")
            self._known_topics.update(missing)

    async def publish(self, topic: str, key: str, event: Mapping[str, Any] | bytes) -> None:
        await self.publish_many([(topic, key, event)])

    async def publish_many(
        self, items: Sequence[tuple[str, str, Mapping[str, Any] | bytes]]
    ) -> None:
        rows = [(validate_topic(t), validate_key(k).encode(), encode_event(e)) for t, k, e in items]
        if not rows:
            return
        producer, _ = self._started()
        await self.ensure_topics([topic for topic, _, _ in rows])
        futures: list[asyncio.Future[Any]] = []
        try:
            # send() only queues the record, in order; the batches go out while we queue.
            for topic, key, value in rows:
                futures.append(await producer.send(topic, value, key=key))
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise Unavailable(f"Kafka did not store the events: {exc}") from None

    async def subscribe(
        self,
        group: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> KafkaSubscription:
        names, compiled = validate_subscription(topics, pattern)
        validate_group(group)
        self._started()
        if names:
            await self.ensure_topics(names)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            metadata_max_age_ms=self.metadata_max_age_ms,
            request_timeout_ms=max(self.request_timeout_ms, self.session_timeout_ms + 5_000),
        )
        subscription = KafkaSubscription(self, consumer)
        listener = _Rebalance(subscription)
        if compiled is not None:
            consumer.subscribe(pattern=compiled.pattern, listener=listener)
        else:
            consumer.subscribe(topics=list(names), listener=listener)
        try:
            await consumer.start()
            if not from_beginning:
                # "latest" is looked up lazily by the first fetch; pin it now, so that
                # what is published after subscribe() returns is not skipped.
                for tp in consumer.assignment():
                    with contextlib.suppress(IllegalStateError):
                        await consumer.position(tp)
        except KafkaError as exc:
            await consumer.stop()
            raise Unavailable(f"cannot join Kafka group {group}: {exc}") from None
        self._subscriptions.add(subscription)
        return subscription


class KafkaSubscription(Subscription):
    def __init__(self, bus: KafkaBus, consumer: AIOKafkaConsumer) -> None:
        self._bus = bus
        self._consumer = consumer
        # Per partition: offsets fetched and not acknowledged, and the offset after the
        # last one fetched.
        self._inflight: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._closed = False

    async def fetch(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1")
        if self._closed:
            raise Unavailable("the subscription is closed")
        try:
            batches = await self._consumer.getmany(
                timeout_ms=max(int(timeout * 1000), 0), max_records=max_messages
            )
        except KafkaError as exc:
            raise Unavailable(f"Kafka fetch failed: {exc}") from None
        out = []
        for tp, records in batches.items():
            pending = self._inflight.setdefault(tp, set())
            for record in records:
                pending.add(record.offset)
                self._next[tp] = record.offset + 1
                out.append(
                    Message(
                        topic=tp.topic,
                        key=record.key.decode("utf-8", "replace") if record.key else "",
                        value=record.value if record.value is not None else b"",
                        offset=record.offset,
                        partition=tp.partition,
                        timestamp=record.timestamp / 1000,
                        headers={k: v.decode("utf-8", "replace") for k, v in record.headers},
                    )
                )
        return out

    def _positions(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        # The first unacknowledged offset, or after the last fetched one when all are.
        return {
            tp: min(self._inflight[tp]) if self._inflight[tp] else self._next[tp]
            for tp in partitions
            if tp in self._next
        }

    async def ack(self, messages: Sequence[Message]) -> None:
        touched: set[TopicPartition] = set()
        for message in messages:
            tp = TopicPartition(message.topic, message.partition)
            pending = self._inflight.get(tp)
            # Not pending: acknowledged already, or from before a rebalance took the
            # partition away (its new owner will have it again).
            if pending is not None and message.offset in pending:
                pending.discard(message.offset)
                touched.add(tp)
        if touched and not self._closed:
            await self._commit(self._positions(touched))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced: the partitions' new owners read from the last
            # committed offsets, so these messages come again (at-least-once).
            log.warning("Kafka commit skipped after a rebalance: %s", exc)
        except KafkaError as exc:
            raise Unavailable(f"Kafka did not commit offsets: {exc}") from None

    def _revoked(self, revoked: set[TopicPartition]) -> None:
        # Every ack has committed already; aiokafka allows no commit at this point (the
        # assignment is gone), and what was not acknowledged goes to the next owner.
        for tp in revoked:
            self._inflight.pop(tp, None)
            self._next.pop(tp, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        # Leaves the group; nothing is committed that was not acknowledged.
        await self._consumer.stop()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._subscription._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    out = []
    for entry in getattr(response, "topic_errors", []):
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((topic, code, message))
    return out
