"""The embedded bus: a durable event log in one SQLite file.

Several processes may share the file (WAL journal, busy timeout). SQLite has one
writer at a time, so the global sequence numbers become visible in order: a reader
that has seen sequence ``n`` will never later find a new message below ``n``. That
lets a consumer keep one cursor over the whole log instead of one per topic.

Consumer groups: the group's position is a committed offset per (group, topic), the
next sequence number to deliver. One member of a group is active at a time: it holds
a lease on the group, renewed while it fetches and acknowledges. Other members of the
same group wait (their ``fetch`` returns nothing) and take over when the active member
closes, or when its lease lapses after ``lease_seconds`` (a crash). The new holder
restarts from the committed offsets, so what was not acknowledged is delivered again.
Within a group messages are delivered in sequence order, which keeps the order of
every key.

Blocking sqlite calls run in one worker thread per bus, never on the event loop.
Retention is not implemented: the log grows until the file is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
from strato.retry import Backoff

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
# How many rows one fetch may step over (other topics, already committed ones) before
# it returns what it has; keeps one call in the worker thread short.
SCAN_BUDGET = 20_000
FIRST_POLL = 0.005

SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL REFERENCES topics(id),
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    origin INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL,
    topic_id INTEGER NOT NULL REFERENCES topics(id),
    next_seq INTEGER NOT NULL,
    PRIMARY KEY (grp, topic_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    grp TEXT PRIMARY KEY,
    member TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


@dataclass
class _Member:
    """State of one subscription; touched only in the bus's worker thread."""

    group: str
    topics: tuple[str, ...]
    pattern: re.Pattern[str] | None
    from_beginning: bool
    member: str = field(default_factory=lambda: uuid.uuid4().hex)
    lease_until: float = 0.0  # 0: not the active member
    origin: int = 0
    committed: dict[int, int] = field(default_factory=dict)
    matching: set[int] = field(default_factory=set)
    topics_seen: int = 0  # highest topic id already tested against the subscription
    cursor: int = 0  # last sequence number examined
    inflight: dict[int, set[int]] = field(default_factory=dict)

    def matches(self, name: str) -> bool:
        if self.pattern is not None:
            return self.pattern.match(name) is not None
        return name in self.topics

    @property
    def default_start(self) -> int:
        # Without a committed offset: the whole topic, or what came after the group's
        # first subscription (kept in the database, so a restart does not skip ahead).
        return 0 if self.from_beginning else self.origin

    def start(self, topic_id: int) -> int:
        return self.committed.get(topic_id, self.default_start)


class EmbeddedBus(Bus):
    """A durable log with consumer groups in the SQLite file ``path``."""

    url_form = "sqlite:///path/to/bus.db (relative paths are in the data directory)"
    URL_OPTIONS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "lease_seconds": float,
        "max_poll_interval": float,
    }

    @classmethod
    def from_url(cls, url: BusURL, data_dir: Path) -> EmbeddedBus:
        # sqlite:///relative and sqlite:////absolute, as in SQLAlchemy URLs.
        if not url.location.startswith("/") or url.location == "/":
            raise url.invalid("names no file")
        path = Path(url.location[1:])
        if not path.is_absolute():
            path = Path(data_dir) / path
        return cls(path, **url.options(cls.URL_OPTIONS))

    def __init__(
        self, path: Path, *, lease_seconds: float = 30.0, max_poll_interval: float = 0.1
    ) -> None:
        if lease_seconds <= 0 or max_poll_interval <= 0:
            raise InvalidInput("lease_seconds and max_poll_interval must be positive")
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.max_poll_interval = max_poll_interval
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._topic_ids: dict[str, int] = {}
        self._topic_names: dict[int, str] = {}
        self._subscriptions: set[EmbeddedSubscription] = set()
        # Wakes this process's fetchers at once after a local publish; other processes
        # are noticed by polling.
        self._published = asyncio.Event()

    # --- worker thread ---------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise Unavailable("the embedded bus is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable("the embedded bus is closed")
        return self._conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives crashes of any process; only a power loss may drop
        # the last transactions. FULL would fsync every publish.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with _write(conn):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        self._conn = conn

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _load_topics(self, conn: sqlite3.Connection) -> None:
        last = max(self._topic_names, default=0)
        for topic_id, name in conn.execute(
            "SELECT id, name FROM topics WHERE id > ? ORDER BY id", (last,)
        ):
            self._topic_ids[name] = topic_id
            self._topic_names[topic_id] = name

    def _insert(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        conn = self._db()
        now = time.time()
        new: dict[str, int] = {}
        with _write(conn):
            values = []
            for topic, key, value in rows:
                topic_id = self._topic_ids.get(topic) or new.get(topic)
                if topic_id is None:
                    conn.execute(
                        "INSERT OR IGNORE INTO topics (name, created) VALUES (?, ?)", (topic, now)
                    )
                    (topic_id,) = conn.execute(
                        "SELECT id FROM topics WHERE name = ?", (topic,)
                    ).fetchone()
                    new[topic] = topic_id
                values.append((topic_id, key, value, now))
            conn.executemany(
                "INSERT INTO messages (topic_id, key, value, ts) VALUES (?, ?, ?, ?)", values
            )
        # Only after the commit: a rolled-back topic id could be handed to another topic.
        for name, topic_id in new.items():
            self._topic_ids[name] = topic_id
            self._topic_names[topic_id] = name

    def _join(self, member: _Member) -> None:
        conn = self._db()
        with _write(conn):
            (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
            conn.execute(
                "INSERT OR IGNORE INTO groups (name, origin, created) VALUES (?, ?, ?)",
                (member.group, last + 1, time.time()),
            )
            (member.origin,) = conn.execute(
                "SELECT origin FROM groups WHERE name = ?", (member.group,)
            ).fetchone()

    def _acquire(self, member: _Member, conn: sqlite3.Connection) -> bool:
        """Become or stay the group's active member; False while another one is."""
        now = time.time()
        if member.lease_until and now < member.lease_until - self.lease_seconds / 2:
            return True
        row = conn.execute(
            "SELECT member, expires FROM leases WHERE grp = ?", (member.group,)
        ).fetchone()
        if row is not None and row[0] != member.member and row[1] > now:
            self._reset(member)
            return False
        with _write(conn):
            row = conn.execute(
                "SELECT member, expires FROM leases WHERE grp = ?", (member.group,)
            ).fetchone()
            if row is not None and row[0] != member.member and row[1] > now:
                self._reset(member)
                return False
            conn.execute(
                "INSERT OR REPLACE INTO leases (grp, member, expires) VALUES (?, ?, ?)",
                (member.group, member.member, now + self.lease_seconds),
            )
            taking_over = not member.lease_until or row is None or row[0] != member.member
            if taking_over:
                member.committed = dict(
                    conn.execute(
                        "SELECT topic_id, next_seq FROM offsets WHERE grp = ?", (member.group,)
                    ).fetchall()
                )
        if taking_over:
            self._reset(member)
            # The last sequence before the topics: a topic this refresh misses was
            # committed later, so all its messages lie after ``last``.
            (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
            self._refresh_matching(member, conn)
            starts = [member.start(t) for t in member.matching]
            member.cursor = min([*starts, last + 1]) - 1
        member.lease_until = now + self.lease_seconds
        return True

    def _reset(self, member: _Member) -> None:
        if member.lease_until:
            log.warning("consumer group %s: this member lost its lease", member.group)
        member.lease_until = 0.0
        member.inflight.clear()

    def _refresh_matching(self, member: _Member, conn: sqlite3.Connection) -> None:
        self._load_topics(conn)
        for topic_id, name in self._topic_names.items():
            if topic_id > member.topics_seen and member.matches(name):
                member.matching.add(topic_id)
        member.topics_seen = max(self._topic_names, default=0)

    def _fetch(self, member: _Member, limit: int) -> tuple[list[Message], bool] | None:
        """Up to ``limit`` messages and whether the log goes on after them; None while
        another member holds the group."""
        conn = self._db()
        if not self._acquire(member, conn):
            return None
        (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM messages").fetchone()
        if last <= member.cursor:
            return [], False
        # Topics are read after ``last`` and the scan stops at it: every message it
        # steps over belongs to a topic this refresh knows, so none is passed by unseen.
        self._refresh_matching(member, conn)
        out: list[Message] = []
        scanned = 0
        rows = conn.execute(
            "SELECT seq, topic_id, key, value, ts FROM messages "
            "WHERE seq > ? AND seq <= ? ORDER BY seq",
            (member.cursor, last),
        )
        try:
            for seq, topic_id, key, value, ts in rows:
                member.cursor = seq
                scanned += 1
                if topic_id in member.matching and seq >= member.start(topic_id):
                    member.inflight.setdefault(topic_id, set()).add(seq)
                    out.append(
                        Message(
                            topic=self._topic_names[topic_id],
                            key=key,
                            value=bytes(value),
                            offset=seq,
                            timestamp=ts,
                        )
                    )
                if len(out) >= limit or scanned >= SCAN_BUDGET:
                    break
        finally:
            rows.close()
        return out, member.cursor < last

    def _ack(self, member: _Member, messages: Sequence[Message]) -> None:
        conn = self._db()
        if not member.lease_until:
            return
        with _write(conn):
            row = conn.execute(
                "SELECT member FROM leases WHERE grp = ?", (member.group,)
            ).fetchone()
            if row is None or row[0] != member.member:
                # Another member took over and restarted from the committed offsets:
                # these messages will be delivered to it again.
                self._reset(member)
                return
            touched: set[int] = set()
            for message in messages:
                topic_id = self._topic_ids.get(message.topic)
                pending = member.inflight.get(topic_id) if topic_id is not None else None
                if topic_id is None or pending is None or message.offset not in pending:
                    continue
                pending.discard(message.offset)
                touched.add(topic_id)
            for topic_id in touched:
                # Everything below the first unacknowledged message is done; with none
                # pending, everything up to the cursor.
                pending = member.inflight[topic_id]
                position = min(pending) if pending else member.cursor + 1
                member.committed[topic_id] = max(member.committed.get(topic_id, 0), position)
                conn.execute(
                    "INSERT INTO offsets (grp, topic_id, next_seq) VALUES (?, ?, ?) "
                    "ON CONFLICT (grp, topic_id) DO UPDATE "
                    "SET next_seq = max(next_seq, excluded.next_seq)",
                    (member.group, topic_id, position),
                )
            now = time.time()
            conn.execute(
                "UPDATE leases SET expires = ? WHERE grp = ?",
                (now + self.lease_seconds, member.group),
            )
            member.lease_until = now + self.lease_seconds

    def _leave(self, member: _Member) -> None:
        if self._conn is None or not member.lease_until:
            return
        with _write(self._conn):
            self._conn.execute(
                "DELETE FROM leases WHERE grp = ? AND member = ?", (member.group, member.member)
            )
        member.lease_until = 0.0
        member.inflight.clear()

    # --- Bus -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-bus")
        try:
            await self._call(self._open)
        except sqlite3.Error as exc:
            await self.close()
            raise Unavailable(f"cannot open the embedded bus {self.path}: {exc}") from None

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._executor is None:
            return
        with contextlib.suppress(sqlite3.Error):
            await self._call(self._close_db)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def publish(self, topic: str, key: str, event: Mapping[str, Any] | bytes) -> None:
        await self.publish_many([(topic, key, event)])

    async def publish_many(
        self, items: Sequence[tuple[str, str, Mapping[str, Any] | bytes]]
    ) -> None:
        # Everything is checked before anything is written: a batch goes in whole or not.
        rows = [(validate_topic(t), validate_key(k), encode_event(e)) for t, k, e in items]
        if not rows:
            return
        await self._call(self._insert, rows)
        self._published.set()
        self._published = asyncio.Event()

    async def subscribe(
        self,
        group: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> EmbeddedSubscription:
        names, compiled = validate_subscription(topics, pattern)
        member = _Member(validate_group(group), names, compiled, from_beginning)
        await self._call(self._join, member)
        subscription = EmbeddedSubscription(self, member)
        self._subscriptions.add(subscription)
        return subscription


class EmbeddedSubscription(Subscription):
    def __init__(self, bus: EmbeddedBus, member: _Member) -> None:
        self._bus = bus
        self._member = member
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether this member currently holds its group (as of its last call)."""
        return bool(self._member.lease_until)

    async def fetch(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        if max_messages < 1:
            raise InvalidInput("max_messages must be at least 1")
        if self._closed:
            raise Unavailable("the subscription is closed")
        deadline = time.monotonic() + max(timeout, 0.0)
        polls = Backoff(FIRST_POLL, self._bus.max_poll_interval)
        waits = 0
        while True:
            wakeup = self._bus._published
            result = await self._bus._call(self._bus._fetch, self._member, max_messages)
            messages, more = result if result is not None else ([], False)
            if messages:
                return messages
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if more:
                continue  # the scan budget went on other topics' messages: read on
            waits += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), min(polls.delay(waits), remaining))

    async def ack(self, messages: Sequence[Message]) -> None:
        if messages and not self._closed:
            await self._bus._call(self._bus._ack, self._member, list(messages))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        with contextlib.suppress(sqlite3.Error, Unavailable):
            await self._bus._call(self._bus._leave, self._member)


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
    # transaction that upgrades from read to write fails at once with SQLITE_BUSY.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
