"""What differs between database engines, behind one interface.

Everything strato does the same way on every engine is written once with SQLAlchemy;
what an engine does its own way (its URL's driver and connect options, the write lock a
writer takes, bulk inserts, inserts that skip rows already there, keys of new rows, a
case-sensitive LIKE, JSON value types, its lock waits, what its driver's errors mean and
how its server creates databases) is a method of its :class:`Dialect`. Capability code asks
the dialect of its engine (:func:`strato.db.dialect_of`) and names no engine or driver.

A dialect is found by its SQLAlchemy dialect name through the ``strato.dialects`` entry
point group (:mod:`strato.db.dialects`), so another engine is one subclass plus an entry
point. Instances hold no state: one per class serves every engine of its kind.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Literal

from sqlalchemy import ColumnElement, ColumnExpressionArgument, Connection, Engine, Table
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from strato import jsonio
from strato.db.cursors import driver_cursor
from strato.db.faults import Fault, unreachable
from strato.extras import optional_driver

# Compiled statements an engine keeps (SQLAlchemy's default is 500, pruned at 750). An
# item search's statement is tens of kilobytes compiled, and searches come in more shapes
# than any cache holds (facets, sorts, time and box filters): under 32 clients of mostly
# new shapes (bench/soak.py) the default cache churned for minutes, each entry allocated
# among request garbage and pinning the memory around it, and the server grew by ~25 MB a
# minute after warm-up. Repeated shapes, which the cache is for, fit in far fewer.
QUERY_CACHE_SIZE = 128
# Connections an engine opens at most when it is not told (strato.settings:
# database_pool_size), and how many of them it keeps when they are returned. The web
# server runs up to 40 requests at once in threads (anyio's limit), each holding one
# connection while it runs: with SQLAlchemy's 5 + 10 the rest of 32 clients' requests
# queued for a connection, and on a busy machine some waited past the pool's 30 s and
# answered 503 (bench/soak.py). Only 5 are kept: 40 kept connections held their SQLite
# page caches when the server idled (bench/RESULTS.md, soak, 2026-12-04: 615 MB 20 s
# after the load with 40 kept, 472 MB with 5).
POOL_SIZE = 40
POOL_KEPT = 5


def pool_options(size: int) -> dict[str, int]:
    """SQLAlchemy's QueuePool options for at most ``size`` connections."""
    kept = min(POOL_KEPT, size)
    return {"pool_size": kept, "max_overflow": size - kept}

# What a JSON value is tested to be before it is compared as one.
JsonKind = Literal["number", "boolean"]
# A LIKE pattern in parts: ``("%", "%")`` any run, ``("_", "_")`` one character,
# ``("c", ch)`` the literal character ``ch``.
LikeParts = Sequence[tuple[str, str]]


class Dialect(ABC):
    """One database engine as strato uses it. Subclasses set the class attributes, write
    the abstract methods and override what else their engine does differently; the
    defaults are standard SQL."""

    # SQLAlchemy dialect names this class serves (``engine.dialect.name``).
    names: ClassVar[tuple[str, ...]] = ()
    # Backend names users may write in a URL for it, beside ``names`` (``postgres``).
    aliases: ClassVar[tuple[str, ...]] = ()
    # The ``backend+driver`` a URL without a driver is given: the driver strato ships.
    driver: ClassVar[str] = ""
    # Whether NULL sorts above every value (PostgreSQL) or below (SQLite, MariaDB).
    nulls_sort_high: ClassVar[bool] = False
    # Whether Alembic must rebuild a table to alter it (SQLite has no ALTER COLUMN).
    alters_in_batches: ClassVar[bool] = False
    # Whether the database lives in a local file rather than on a server.
    is_file: ClassVar[bool] = False

    # --- connecting -----------------------------------------------------------------------

    def url(self, url: URL) -> URL:
        """``url`` with the shipped driver when it names none, and the options strato needs."""
        if "+" not in url.drivername:
            url = url.set(drivername=self.driver)
        return url

    def create_engine(self, url: URL, pool_size: int = POOL_SIZE) -> Engine:
        """An engine for ``url`` opening up to ``pool_size`` connections at once."""
        # SQLAlchemy imports the driver here: the extra that brings it is named if it is
        # missing.
        with optional_driver():
            return sa_create_engine(
                url,
                **pool_options(pool_size),
                pool_pre_ping=True,
                pool_recycle=1800,
                query_cache_size=QUERY_CACHE_SIZE,
                json_serializer=jsonio.dumps,
                json_deserializer=jsonio.loads,
            )

    # --- writing --------------------------------------------------------------------------

    def begin_write(self, session: Session) -> None:  # noqa: B027 (a default: nothing to do)
        """Begin ``session``'s transaction as a writer, before it reads (see
        :func:`strato.db.begin_write`). On a server the transaction already began with its
        connection, and row locks are taken as rows are written."""

    def insert_rows(
        self, conn: Connection, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert ``rows`` (values in the order of ``names``) into ``table`` straight through
        the driver, in ``conn``'s transaction: a catalog item has tens of facet rows, and
        SQLAlchemy's handling of each row's parameters costs about as much as the
        database's insert of it."""
        if not rows:
            return
        # What the column types do to a value on its way in (UTC datetimes made naive).
        binds = [
            table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            for name in names
        ]
        values: Sequence[Sequence[Any]] = rows
        if any(bind is not None for bind in binds):
            values = [
                [v if bind is None else bind(v) for v, bind in zip(row, binds, strict=True)]
                for row in rows
            ]
        self._insert_values(conn, table, names, values)

    def _insert_values(
        self,
        conn: Connection,
        table: Table,
        names: Sequence[str],
        values: Sequence[Sequence[Any]],
    ) -> None:
        """``values``, already as the driver takes them, with one ``executemany``."""
        quote = conn.dialect.identifier_preparer.quote
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
            f"VALUES ({', '.join(mark for _ in names)})"
        )
        with driver_cursor(conn, statement) as cursor:
            cursor.executemany(statement, values)

    @abstractmethod
    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows``, leaving out those whose primary key is already there."""

    def next_keys(self, conn: Connection, column: ColumnExpressionArgument[int]) -> int | None:
        """The first key of ``column`` (an autoincrement primary key) this writer may give
        new rows itself, which spares reading the keys back; None when the database gives
        them and they are to be read back after the insert."""
        return None

    @contextlib.contextmanager
    def no_lock_wait(self, session: Session) -> Iterator[None]:
        """Within ``session``'s transaction, fail at once (``OperationalError``) instead of
        waiting for a lock another writer holds; the connection's own setting comes back
        afterwards."""
        yield

    # --- reading --------------------------------------------------------------------------

    def case_sensitive_like(
        self, expr: ColumnElement[Any], parts: LikeParts
    ) -> ColumnElement[bool] | None:
        """``expr`` matching the pattern ``parts`` with case counting, when this engine's
        LIKE ignores case; None when its LIKE already counts case."""
        return None

    @abstractmethod
    def json_is(
        self,
        kind: JsonKind,
        document: Any,
        path: Sequence[str],
        member: Any,
    ) -> ColumnElement[bool]:
        """Whether the JSON value at ``path`` in ``document`` (``member`` is that value as
        SQLAlchemy extracts it) is a ``kind``, so that no database casts text."""

    # --- faults ---------------------------------------------------------------------------

    def raised(self, orig: BaseException) -> bool:
        """Whether ``orig`` is an error of this engine's driver."""
        return False

    def fault(self, exc: BaseException, orig: BaseException) -> Fault | None:
        """What ``orig``, an error of this engine's driver (``exc`` as SQLAlchemy wrapped it,
        or ``orig`` itself), says of the database: a :class:`Fault` when it cannot serve
        now, None when the statement or its data is at fault."""
        if isinstance(exc, sa_exc.DBAPIError) and (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
        ):
            return unreachable(orig)
        return None

    def busy(self, orig: BaseException) -> bool:
        """Whether ``orig`` says another writer held the database longer than the driver
        waits for it (an outage to wait out, not a bad batch)."""
        return False

    def message(self, orig: BaseException) -> str:
        """What the driver said in ``orig``, without its codes."""
        return str(orig)

    def read_only_problem(self, engine: Engine) -> str | None:
        """Why the database would refuse writes now, or None when it takes them."""
        return None

    # --- databases on a server ------------------------------------------------------------

    # The database to connect to when creating or dropping another one (None: none).
    maintenance_database: ClassVar[str | None] = None

    def database_exists(self, conn: Connection, name: str) -> bool:
        raise NotImplementedError(f"{type(self).__name__} does not create databases")

    def create_database(self, conn: Connection, name: str) -> bool:
        """Create database ``name`` on ``conn``'s server (autocommit); False when someone
        else created it meanwhile."""
        raise NotImplementedError(f"{type(self).__name__} does not create databases")

    def drop_database(self, conn: Connection, name: str) -> None:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    @contextlib.contextmanager
    def server_connection(self, url: URL) -> Iterator[Connection]:
        """An autocommit connection to ``url``'s server, outside the database it names
        (CREATE DATABASE runs in no transaction and not in the database itself)."""
        with optional_driver():
            engine = sa_create_engine(
                # URL.set() reads None as "unchanged"; the named tuple's own replace clears it.
                url._replace(database=self.maintenance_database),
                isolation_level="AUTOCOMMIT",
                poolclass=NullPool,
            )
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


@contextlib.contextmanager
def swapped_setting(conn: Connection, read: str, write: str, value: int) -> Iterator[None]:
    """``conn``'s setting that ``read`` shows, set to ``value`` with ``write`` (a format
    string) for the block, then set back to what it was."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(read)
        before = int(cursor.fetchone()[0])
        cursor.execute(write.format(value))
        try:
            yield
        finally:
            cursor.execute(write.format(before))
    finally:
        cursor.close()
