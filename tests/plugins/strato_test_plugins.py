"""A third-party distribution as a test would install it: a bus backend and a database
dialect, each one class, declared through entry points (see test_plugins.py).

The dialect brings an engine strato's source does not know: ``sqlitetest``, SQLAlchemy's
SQLite dialect under another name (registered with SQLAlchemy through its own
``sqlalchemy.dialects`` entry point), with strato's SQLite dialect class under that name
counting what strato asks of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.orm import Session

from strato.bus.base import Bus, Message, Subscription, encode
from strato.bus.urls import BusURL
from strato.db.dialects.sqlite import SQLiteDialect

# --- a bus backend --------------------------------------------------------------------------

# Every MemoryBus of one name shares its topics, as servers would.
_LOGS: dict[str, dict[str, list[Message]]] = {}


class MemoryBus(Bus):
    """Events in a dict of lists: no groups' sharing, no durability; enough to carry one."""

    url_form = "mem-test://name"

    @classmethod
    def from_url(cls, url: BusURL, data_dir: Path) -> MemoryBus:
        if not url.location:
            raise url.invalid("names no log")
        return cls(url.location)

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def publish(self, topic: str, key: str, event: Mapping[str, Any] | bytes) -> None:
        log = _LOGS.setdefault(self.name, {}).setdefault(topic, [])
        log.append(Message(topic=topic, key=key, value=encode(event), offset=len(log)))

    async def subscribe(
        self,
        group: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> Subscription:
        return _MemorySubscription(_LOGS.setdefault(self.name, {}), list(topics))


class _MemorySubscription(Subscription):
    def __init__(self, log: dict[str, list[Message]], topics: list[str]) -> None:
        self.log = log
        self.topics = topics
        self.acked: dict[str, int] = {}

    async def fetch(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        await asyncio.sleep(0)
        found = [m for t in self.topics for m in self.log.get(t, [])[self.acked.get(t, 0) :]]
        return found[:max_messages]

    async def ack(self, messages: Sequence[Message]) -> None:
        for m in messages:
            self.acked[m.topic] = max(self.acked.get(m.topic, 0), m.offset + 1)

    async def close(self) -> None:
        pass


# --- a database dialect ---------------------------------------------------------------------


class SQLAlchemyTestDialect(SQLiteDialect_pysqlite):
    """SQLAlchemy's side: SQLite's dialect under the name ``sqlitetest``."""

    name = "sqlitetest"
    supports_statement_cache = True


class CountingDialect(SQLiteDialect):
    """strato's side: its SQLite dialect for ``sqlitetest`` engines, counting its calls."""

    names = ("sqlitetest",)
    driver = "sqlitetest"
    calls: ClassVar[Counter[str]] = Counter()

    def begin_write(self, session: Session) -> None:
        self.calls["begin_write"] += 1
        super().begin_write(session)

    def insert_rows(
        self, conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        self.calls[f"insert_rows {table.name}"] += 1
        super().insert_rows(conn, table, names, rows)

    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        self.calls[f"insert_new {table.name}"] += 1
        super().insert_new(conn, table, rows)
