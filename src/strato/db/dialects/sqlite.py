"""SQLite: a file beside the server, one writer at a time."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Connection,
    Engine,
    Table,
    event,
    func,
    literal,
    select,
)
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from strato import jsonio
from strato.db.dialects.base import (
    POOL_SIZE,
    QUERY_CACHE_SIZE,
    Dialect,
    JsonKind,
    LikeParts,
    pool_options,
    swapped_setting,
)
from strato.db.faults import Fault, busy_fault, read_only_fault

# How much write-ahead log SQLite gathers before copying it back into the database.
WAL_CHECKPOINT_BYTES = 160 * 2**20
# What all of one engine's page caches may hold at once, and one connection's at most.
# Each connection has its own cache, and a server's pool may hold 40 at once under load
# (see POOL_SIZE): at 64 MiB each a catalog server grew from 300 MB to 2.4 GB in 90 s of
# concurrent searches (bench/soak.py), since the allocator kept what closed connections
# freed. The file's pages stay in the operating system's cache, shared by all of them.
PAGE_CACHE_BUDGET = 256 * 2**20
PAGE_CACHE_MAX = 8 * 2**20

# SQLite's primary result codes that mean "not now" or "not here", never a wrong
# statement: PERM, BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
_UNAVAILABLE = frozenset({3, 5, 6, 8, 10, 13, 14, 15})
_BUSY = 5
_READONLY = 8
# What json_type() calls each kind of value.
_JSON_TYPES: dict[str, tuple[str, ...]] = {
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
}


def _pragmas(dbapi_conn: Any, _record: Any, *, cache_bytes: int = PAGE_CACHE_MAX) -> None:
    cur = dbapi_conn.cursor()
    # 16 KiB pages instead of 4 (for a database this creates; an existing one keeps its
    # own): a catalog item's JSON, about 6 KB, fits in its row's page instead of running
    # over into a chain of overflow pages, and index trees are shallower.
    cur.execute("PRAGMA page_size=16384")
    # WAL lets the web server read while a worker writes; NORMAL is durable under WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # A share of PAGE_CACHE_BUDGET instead of SQLite's 2 MiB (negative: KiB).
    cur.execute(f"PRAGMA cache_size=-{cache_bytes // 1024}")
    # Checkpoints every 160 MB of log rather than every 1,000 pages: a catalog batch
    # writes several MB, and the index pages it changes are then copied back once for
    # many batches (apply is about 8% cheaper than at 40 MB). The setting counts pages,
    # and a database keeps the page size it was made with.
    page_size = cur.execute("PRAGMA page_size").fetchone()[0]
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
    cur.close()


def _code(orig: BaseException) -> int | None:
    code = getattr(orig, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


class SQLiteDialect(Dialect):
    names = ("sqlite",)
    driver = "sqlite"
    alters_in_batches = True
    is_file = True

    def create_engine(self, url: URL, pool_size: int = POOL_SIZE) -> Engine:
        path = url.database
        in_file = False
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            in_file = True
        # A database in memory lives in one connection per thread (SingletonThreadPool),
        # which overflows nothing.
        pool = pool_options(pool_size) if in_file else {"pool_size": pool_size}
        engine = sa_create_engine(
            url,
            **pool,
            connect_args={"timeout": 30, "check_same_thread": False},
            query_cache_size=QUERY_CACHE_SIZE,
            json_serializer=jsonio.dumps,
            json_deserializer=jsonio.loads,
        )
        cache = min(PAGE_CACHE_MAX, PAGE_CACHE_BUDGET // pool_size)
        event.listen(engine, "connect", functools.partial(_pragmas, cache_bytes=cache))
        return engine

    # --- writing --------------------------------------------------------------------------

    def begin_write(self, session: Session) -> None:
        # The driver begins a transaction only at the first write, so a SAVEPOINT taken
        # before one became the transaction itself and its RELEASE a commit. BEGIN
        # IMMEDIATE also takes the write lock up front, so the transaction's reads cannot
        # go stale before its writes.
        conn = session.connection()
        if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)

    def next_keys(self, conn: Connection, column: ColumnExpressionArgument[int]) -> int | None:
        # begin_write took the write lock, so no one else takes a key before our commit:
        # the keys SQLite would give (the largest so far, plus one) are ours to give.
        return (conn.scalar(select(func.max(column))) or 0) + 1

    @contextlib.contextmanager
    def no_lock_wait(self, session: Session) -> Iterator[None]:
        with swapped_setting(
            session.connection(), "PRAGMA busy_timeout", "PRAGMA busy_timeout = {}", 0
        ):
            yield

    # --- reading --------------------------------------------------------------------------

    def case_sensitive_like(
        self, expr: ColumnElement[Any], parts: LikeParts
    ) -> ColumnElement[bool] | None:
        # SQLite's LIKE ignores ASCII case; GLOB does not.
        glob = "".join(
            "*" if k == "%" else "?" if k == "_" else f"[{c}]" if c in "*?[" else c
            for k, c in parts
        )
        return expr.op("GLOB")(literal(glob))

    def json_is(
        self, kind: JsonKind, document: Any, path: Sequence[str], member: Any
    ) -> ColumnElement[bool]:
        # By path: the extracted value of a JSON false is 0, whose type is integer.
        where = "$" + "".join(f'."{step}"' for step in path)
        return func.json_type(document, where).in_(_JSON_TYPES[kind])

    # --- faults ---------------------------------------------------------------------------

    def raised(self, orig: BaseException) -> bool:
        return isinstance(orig, sqlite3.Error)

    def fault(self, exc: BaseException, orig: BaseException) -> Fault | None:
        code = _code(orig)
        if code == _READONLY:
            return read_only_fault(orig)
        if code is None or code not in _UNAVAILABLE:
            return None
        return busy_fault(orig)

    def busy(self, orig: BaseException) -> bool:
        return _code(orig) == _BUSY

    def read_only_problem(self, engine: Engine) -> str | None:
        path = engine.url.database
        if not path or path == ":memory:":
            return None
        try:
            # Opened for writing, not only checked with access(): root passes every
            # access() check, but not a read-only mount.
            os.close(os.open(path, os.O_RDWR))
        except FileNotFoundError:
            return None  # created on first write, where the directory check applies
        except OSError as exc:
            return f"database file is not writable: {exc.strerror}"
        return None
