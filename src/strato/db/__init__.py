"""Database engine, sessions and migrations (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Engine, MetaData, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from strato import jsonio
from strato.errors import InvalidInput, Unavailable

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Users write the short forms; we pick the drivers we ship.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes everywhere, stored naive because MariaDB and SQLite drop zones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Any) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLAlchemy's own SQLite text for a datetime ("2020-01-02 03:04:05.000678") in
        # one call, not through its format string: an ingest writes six per item.
        def process(value: datetime | None) -> str | None:
            naive = self.process_bind_param(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return process


def utcnow() -> datetime:
    # Microseconds dropped: MariaDB DATETIME keeps whole seconds unless told otherwise.
    return datetime.now(UTC).replace(microsecond=0)


def normalize_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"database URL is not a valid SQLAlchemy URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise InvalidInput(
            f"database backend {backend!r} is not supported; use sqlite, postgresql or mysql"
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    if parsed.get_backend_name() == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=jsonio.dumps,
            json_deserializer=jsonio.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa_create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=1800,
        json_serializer=jsonio.dumps,
        json_deserializer=jsonio.loads,
    )


# How much write-ahead log SQLite gathers before copying it back into the database.
WAL_CHECKPOINT_BYTES = 160 * 2**20


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # 16 KiB pages instead of 4 (for a database this creates; an existing one keeps its
    # own): a catalog item's JSON, about 6 KB, fits in its row's page instead of running
    # over into a chain of overflow pages, and index trees are shallower.
    cur.execute("PRAGMA page_size=16384")
    # WAL lets the web server read while a worker writes; NORMAL is durable under WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # 8 MiB page cache instead of 2 MiB. Each connection has its own, and a server's pool
    # opens up to 15 under load and closes the overflow ones: at 64 MiB each a catalog
    # server grew from 300 MB to 2.4 GB in 90 s of concurrent searches (bench/soak.py),
    # since the allocator kept what closed connections freed. The file's pages stay in
    # the operating system's cache, shared by all connections.
    cur.execute("PRAGMA cache_size=-8192")
    # Checkpoints every 160 MB of log rather than every 1,000 pages: a catalog batch
    # writes several MB, and the index pages it changes are then copied back once for
    # many batches (apply is about 8% cheaper than at 40 MB). The setting counts pages,
    # and a database keeps the page size it was made with.
    page_size = cur.execute("PRAGMA page_size").fetchone()[0]
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
    cur.close()


def begin_write(session: Session) -> None:
    """Begin ``session``'s transaction as a writer, before it reads.

    On SQLite the driver begins a transaction only at the first write, so a SAVEPOINT
    taken before one became the transaction itself and its RELEASE a commit: work meant
    to wait for the session's commit was committed early. BEGIN IMMEDIATE also takes the
    write lock up front, so the transaction's reads cannot go stale before its writes.
    Elsewhere the session's transaction already began with its connection. Only for
    writers: an engine-wide BEGIN would also start every read early, and a deferred
    transaction that reads, then writes after another writer's commit, fails at once.
    """
    conn = session.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def driver_cursor(conn: Connection, statement: str) -> Iterator[Any]:
    """A DB-API cursor on ``conn``'s connection, in its transaction, for work where
    SQLAlchemy's per-statement handling costs as much as the database's; driver errors
    come out as SQLAlchemy raises them (IntegrityError, OperationalError and the like),
    naming ``statement``."""
    driver_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except driver_error as exc:
        raise DBAPIError.instance(statement, None, exc, driver_error) from exc
    finally:
        cursor.close()


# --- faults: what a database or the disk under it says when it cannot serve ------------

# SQLite's primary result codes that mean "not now" or "not here", never a wrong
# statement: PERM, BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_UNAVAILABLE = frozenset({3, 5, 6, 8, 10, 13, 14, 15})
_SQLITE_READONLY = 8
# PostgreSQL: read_only_sql_transaction. MariaDB/MySQL: --read-only server, read-only
# transaction.
_PG_READ_ONLY = "25006"
_MYSQL_READ_ONLY = frozenset({1290, 1792})
# A file the server cannot write (or read): a read-only mount, permissions, a full disk.
_STORAGE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Fault:
    """A failure of the database or the storage under it, as users should hear of it."""

    error: Unavailable
    # The connection went away under the request: running it again may well succeed.
    lost_connection: bool
    # What the driver said, for the log (never for clients: it names hosts and files).
    cause: str


def fault_of(exc: BaseException) -> Fault | None:
    """``exc`` as a :class:`Fault` when it says the database or its storage cannot serve
    now (down, connection lost, read-only, locked, disk full); None for anything else,
    which stays a bug of ours (500)."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return Fault(Unavailable("the database did not answer; try again shortly"), True, str(exc))
    orig: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    cause = _first_line(orig or exc)
    if _read_only(orig):
        return Fault(_read_only_error(), False, cause)
    if isinstance(orig, sqlite3.Error):  # through SQLAlchemy, or the embedded bus's own
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in _SQLITE_UNAVAILABLE:
            return None
        return Fault(Unavailable("the database is busy or cannot be opened"), False, cause)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        ):
            return Fault(
                Unavailable("the database is not reachable; try again shortly"), True, cause
            )
        return None
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        reason = os.strerror(exc.errno) if exc.errno is not None else "storage error"
        return Fault(Unavailable(f"the server cannot write its data: {reason}"), False, cause)
    return None


def _read_only(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == _PG_READ_ONLY:
        return True
    if isinstance(orig, sqlite3.Error):
        return (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_READONLY
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and isinstance(args[0], int) and args[0] in _MYSQL_READ_ONLY


def _read_only_error() -> Unavailable:
    return Unavailable("the database is read-only: writes are refused until it is writable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_only_problem(engine: Engine) -> str | None:
    """Why the database would refuse writes now, or None when it takes them."""
    if engine.dialect.name == "sqlite":
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
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            flag = conn.execute(text("SELECT current_setting('transaction_read_only')")).scalar()
            if flag == "on":
                return "database is read-only (transaction_read_only is on)"
            return None
        try:
            row = conn.execute(text("SELECT @@global.read_only, @@tx_read_only")).one()
        except DBAPIError:  # MySQL 8 renamed the session variable
            row = conn.execute(text("SELECT @@global.read_only, @@transaction_read_only")).one()
        if row[0] or row[1]:
            return "database is read-only (read_only is set)"
        return None


# --- databases on a server ---------------------------------------------------------------


def create_database_if_missing(url: str) -> bool:
    """Create the database ``url`` names on its PostgreSQL or MariaDB server when it does
    not exist; True when it was created. SQLite files are created on first use."""
    target = make_url(normalize_url(url))
    name = target.database
    if target.get_backend_name() == "sqlite" or not name:
        return False
    with _server_connection(target) as conn:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        if target.get_backend_name() == "postgresql":
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if found:
                return False
            try:
                conn.execute(text(f"CREATE DATABASE {quoted}"))
            except sa_exc.ProgrammingError:  # created by someone else meanwhile
                return False
            return True
        found = conn.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
            {"name": name},
        ).scalar()
        if found:
            return False
        # utf8mb4_bin: ids compare byte for byte, as on PostgreSQL and SQLite.
        conn.execute(
            text(
                f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        )
        return True


def drop_database(url: str) -> None:
    """Drop the database ``url`` names on its server, if it exists (not SQLite files)."""
    target = make_url(normalize_url(url))
    name = target.database
    if target.get_backend_name() == "sqlite" or not name:
        return
    with _server_connection(target) as conn:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        force = " WITH (FORCE)" if target.get_backend_name() == "postgresql" else ""
        conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{force}"))


@contextlib.contextmanager
def _server_connection(target: Any) -> Iterator[Connection]:
    """An autocommit connection to ``target``'s server, outside the database it names
    (CREATE DATABASE runs in no transaction and not in the database itself)."""
    maintenance = "postgres" if target.get_backend_name() == "postgresql" else None
    engine = sa_create_engine(
        # URL.set() reads None as "unchanged"; the named tuple's own replace clears it.
        target._replace(database=maintenance),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("strato") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
