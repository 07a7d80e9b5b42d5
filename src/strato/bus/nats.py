"""The bus on NATS JetStream.

One stream (``STRATO`` unless told otherwise) holds the subjects ``<prefix>.>``; topic
``A.B.C`` is subject ``strato.A.B.C``. The event key travels in the ``Strato-Key``
header.

A consumer group is a durable pull consumer. A subscription to one topic filters on
its subject on the server, and so does a pattern that subject wildcards say exactly
(``[^.]+\\.historical\\.[^.]+`` is ``*.historical.*``, see :func:`subject_filter`);
other patterns, or several topics, read ``<prefix>.>`` and filter here, acknowledging
what does not match at once. The durable's name is derived from the group and that
filter, so a group keeps its position per filter.

Ordering: JetStream orders a stream by its sequence number and delivers a consumer's
messages in that order, so one member of a group sees every subject, and so every key,
in publish order. Batch publishes are written to the connection in order before their
acknowledgements are awaited, so they keep their order too. With several members in
one group the server hands batches to whichever member pulls, and two members may
process messages of one key at the same time: per-key order then holds per member only.

At-least-once: messages are acknowledged one by one (explicit ack policy). Messages a
member fetched and did not acknowledge are negatively acknowledged when it closes, so
the group gets them again at once; after a crash they come back after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import nats
import nats.errors
import nats.js.errors
from nats.js import api

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

KEY_HEADER = "Strato-Key"
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class NatsBus(Bus):
    url_form = "nats://host:4222[?stream=STRATO&prefix=strato&ack_wait=30]"
    URL_OPTIONS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "stream": str,
        "prefix": str,
        "ack_wait": float,
        "max_ack_pending": int,
        "connect_timeout": float,
    }

    @classmethod
    def from_url(cls, url: BusURL, data_dir: Path) -> NatsBus:
        servers = ",".join(f"nats://{host}" for host in url.hosts())
        return cls(servers, **url.options(cls.URL_OPTIONS))

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "STRATO",
        prefix: str = "strato",
        ack_wait: float = 30.0,
        max_ack_pending: int = 10_000,
        connect_timeout: float = 5.0,
    ) -> None:
        if not _STREAM_NAME.fullmatch(stream):
            raise InvalidInput(
                f"NATS stream name {stream!r} is not valid: use letters, digits, '-' and '_'"
            )
        if ack_wait <= 0 or max_ack_pending < 1 or connect_timeout <= 0:
            raise InvalidInput("ack_wait, max_ack_pending and connect_timeout must be positive")
        self.servers = [s.strip() for s in url.split(",") if s.strip()]
        if not self.servers:
            raise InvalidInput("NATS URL names no server")
        self.stream = stream
        self.prefix = validate_topic(prefix)
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.connect_timeout = connect_timeout
        self._nc: Any = None
        self._js: Any = None
        self._subscriptions: set[NatsSubscription] = set()

    def subject(self, topic: str) -> str:
        return f"{self.prefix}.{validate_topic(topic)}"

    def topic(self, subject: str) -> str:
        return subject[len(self.prefix) + 1 :]

    def _jetstream(self) -> Any:
        if self._js is None:
            raise Unavailable("the NATS bus is not started")
        return self._js

    async def start(self) -> None:
        if self._nc is not None:
            return
        servers = [s if "://" in s else f"nats://{s}" for s in self.servers]
        shown = ", ".join(mask_url(s) for s in servers)
        seen: list[BaseException] = []
        lost = False

        # nats-py logs every failed attempt with a traceback unless given callbacks; the
        # bus says once, in one line, what the failure means.
        async def on_error(exc: Exception) -> None:
            nonlocal lost
            seen.append(exc)
            if self._nc is not None and not lost:
                lost = True
                log.warning("NATS at %s: %s; reconnecting", shown, _reason(exc))
            else:
                log.debug("NATS at %s: %s", shown, _reason(exc))

        async def on_reconnect() -> None:
            nonlocal lost
            if lost:
                log.info("NATS at %s: connected again", shown)
            lost = False

        try:
            # One attempt per server (two is nats-py's least), short apart: whoever
            # starts the bus retries with its own backoff and tells its user meanwhile.
            self._nc = await nats.connect(
                servers=servers,
                connect_timeout=self.connect_timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=on_error,
                reconnected_cb=on_reconnect,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            cause = seen[-1] if seen else exc
            raise Unavailable(f"event bus {shown} is unreachable ({_reason(cause)})") from None
        # Connected once, the client keeps reconnecting by itself, however long the server
        # is away: a node must come back when NATS does. nats-py reads these options at
        # each reconnect; it has no separate setting for the first connection.
        self._nc.options.update(
            allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=1
        )
        self._js = self._nc.jetstream()
        try:
            await self._ensure_stream()
        except BaseException:
            await self.close()
            raise

    def problem(self) -> str | None:
        nc = self._nc
        if nc is None or nc.is_connected:
            return None
        shown = ", ".join(mask_url(s) for s in self.servers)
        return f"event bus {shown}: connection lost, reconnecting"

    async def _ensure_stream(self) -> None:
        js = self._jetstream()
        wanted = f"{self.prefix}.>"
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            info = None
        except nats.errors.Error as exc:
            raise Unavailable(f"NATS JetStream is not available: {exc}") from None
        if info is not None:
            if wanted not in (info.config.subjects or []):
                raise InvalidInput(
                    f"NATS stream {self.stream} exists without subjects {wanted}; "
                    "choose another stream name or prefix"
                )
            return
        try:
            await js.add_stream(
                name=self.stream,
                subjects=[wanted],
                storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.LIMITS,
            )
        except nats.js.errors.APIError as exc:
            raise Unavailable(f"cannot create NATS stream {self.stream}: {exc}") from None

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError, OSError):
                await nc.flush(timeout=5)
            await nc.close()

    async def publish(self, topic: str, key: str, event: Mapping[str, Any] | bytes) -> None:
        subject = self.subject(topic)
        headers = {KEY_HEADER: validate_key(key)}
        try:
            await self._jetstream().publish(
                subject, encode_event(event), stream=self.stream, headers=headers
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise Unavailable(f"NATS did not store the event on {subject}: {exc}") from None

    async def publish_many(
        self, items: Sequence[tuple[str, str, Mapping[str, Any] | bytes]]
    ) -> None:
        rows = [(self.subject(t), validate_key(k), encode_event(e)) for t, k, e in items]
        js = self._jetstream()
        futures = []
        try:
            # Each publish_async is written to the connection before the next one, in
            # order; only the acknowledgements are awaited together.
            for subject, key, value in rows:
                futures.append(
                    await js.publish_async(
                        subject, value, stream=self.stream, headers={KEY_HEADER: key}
                    )
                )
            await asyncio.gather(*futures)
        except (TimeoutError, nats.errors.Error) as exc:
            for future in futures:
                future.cancel()
            raise Unavailable(f"NATS did not store the batch: {exc}") from None

    def durable_name(self, group: str, filter_subject: str) -> str:
        digest = hashlib.sha256(f"{group}\0{filter_subject}".encode()).hexdigest()[:12]
        return f"{_UNSAFE.sub('_', group)[:100]}-{digest}"

    async def subscribe(
        self,
        group: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> NatsSubscription:
        names, compiled = validate_subscription(topics, pattern)
        validate_group(group)
        narrowed = subject_filter(pattern) if pattern is not None else None
        wanted: re.Pattern[str] | frozenset[str] | None
        if len(names) == 1:
            filter_subject = self.subject(names[0])
            wanted = None
        elif narrowed is not None:
            # The server sends only what the pattern takes; the check here stays, cheap.
            filter_subject = f"{self.prefix}.{narrowed}"
            wanted = compiled
        else:
            # One server-side filter per consumer on NATS before 2.10: filter here.
            filter_subject = f"{self.prefix}.>"
            wanted = compiled if compiled is not None else frozenset(names)
        durable = self.durable_name(group, filter_subject)
        config = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=api.DeliverPolicy.ALL if from_beginning else api.DeliverPolicy.NEW,
            filter_subject=filter_subject,
        )
        try:
            pull = await self._jetstream().pull_subscribe(
                filter_subject, durable=durable, stream=self.stream, config=config
            )
        except (TimeoutError, nats.errors.Error) as exc:
            raise Unavailable(f"cannot create NATS consumer {durable}: {exc}") from None
        subscription = NatsSubscription(self, pull, wanted)
        self._subscriptions.add(subscription)
        return subscription


# Parts of a topic pattern that a NATS subject filter says exactly, on topic names
# (dot-separated words of letters, digits, "-" and "_"): a word, any one word, the rest.
_WORD = re.compile(r"[A-Za-z0-9_-]+")
_ANY_WORD = "[^.]+"
_THE_REST = (".+", ".*")


def subject_filter(pattern: str) -> str | None:
    """The subject filter (below the prefix) that takes exactly the topics ``pattern``
    matches, or None when wildcards cannot say it.

    ``[^.]+\\.historical\\.[^.]+`` is ``*.historical.*``; ``CMIP6\\..*`` is ``CMIP6.>``.
    """
    parts = pattern.split(r"\.")
    out = []
    for i, part in enumerate(parts):
        if part == _ANY_WORD:
            out.append("*")
        elif part in _THE_REST and 0 < i == len(parts) - 1:
            out.append(">")
        elif _WORD.fullmatch(part):
            out.append(part)
        else:
            return None
    return ".".join(out)


class NatsSubscription(Subscription):
    def __init__(
        self, bus: NatsBus, pull: Any, wanted: re.Pattern[str] | frozenset[str] | None
    ) -> None:
        self._bus = bus
        self._pull = pull
        self._wanted = wanted
        # Fetched, not yet acknowledged: stream sequence -> NATS message.
        self._inflight: dict[int, Any] = {}
        self._closed = False

    def _matches(self, topic: str) -> bool:
        if self._wanted is None:
            return True
        if isinstance(self._wanted, frozenset):
            return topic in self._wanted
        return self._wanted.match(topic) is not None

    async def fetch(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1")
        if self._closed:
            raise Unavailable("the subscription is closed")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            # nats-py needs a positive timeout; a tiny one still returns what is there.
            remaining = max(deadline - time.monotonic(), 0.05)
            try:
                raw = await self._pull.fetch(batch=max_messages, timeout=remaining)
            except (TimeoutError, nats.errors.TimeoutError):
                raw = []
            except nats.errors.Error as exc:
                raise Unavailable(f"NATS fetch failed: {exc}") from None
            out = []
            skipped = []
            for msg in raw:
                topic = self._bus.topic(msg.subject)
                if not self._matches(topic):
                    skipped.append(msg)
                    continue
                sequence = msg.metadata.sequence.stream
                self._inflight[sequence] = msg
                out.append(
                    Message(
                        topic=topic,
                        key=(msg.headers or {}).get(KEY_HEADER, ""),
                        value=bytes(msg.data),
                        offset=sequence,
                        timestamp=msg.metadata.timestamp.timestamp(),
                    )
                )
            for msg in skipped:
                await msg.ack()
            if out or time.monotonic() >= deadline:
                return out

    async def ack(self, messages: Sequence[Message]) -> None:
        acked = 0
        for message in messages:
            msg = self._inflight.pop(message.offset, None)
            if msg is not None:
                await msg.ack()
                acked += 1
        if acked and self._bus._nc is not None:
            # The acks are plain publishes; the flush round trip makes sure the server
            # has them before the caller goes on as if they were durable.
            try:
                await self._bus._nc.flush(timeout=10)
            except (TimeoutError, nats.errors.Error) as exc:
                raise Unavailable(f"NATS did not confirm the acknowledgements: {exc}") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        pending = [*self._inflight.values(), *_undelivered(self._pull)]
        pending.sort(key=lambda msg: msg.metadata.sequence.stream)
        self._inflight.clear()
        with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
            # In stream order, so the group's next member gets them back in order.
            for msg in pending:
                await msg.nak()
            await self._pull.unsubscribe()
            if self._bus._nc is not None:
                await self._bus._nc.flush(timeout=5)


def _reason(exc: BaseException) -> str:
    """What went wrong in a few words: "Connection refused", not a traceback."""
    if isinstance(exc, OSError) and (exc.errno or exc.strerror):
        # asyncio's own text names the address again ("Connect call failed (...)").
        return os.strerror(exc.errno) if exc.errno else str(exc.strerror)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | nats.errors.TimeoutError):
        return "no answer in time"
    text = mask_secrets(str(exc)).strip()
    return text.removeprefix("nats: ") or type(exc).__name__


def _undelivered(pull: Any) -> list[Any]:
    """Messages the server sent for an expired pull request that no fetch has taken yet.

    Handing them back now spares the group a wait of ``ack_wait`` for them.
    """
    queue = getattr(getattr(pull, "_sub", None), "_pending_queue", None)
    found: list[Any] = []
    if queue is None:
        return found
    while not queue.empty():
        msg = queue.get_nowait()
        # Status messages (no messages, timeout) have no JetStream ack subject.
        if (msg.reply or "").startswith("$JS.ACK."):
            found.append(msg)
    return found
