"""Database engine, sessions and migrations (SQLite, PostgreSQL, MariaDB).

What differs between the engines is in their dialects (:mod:`strato.db.dialects`); this
module is what the rest of strato calls, the same way on every engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from strato.db.cursors import driver_cursor
from strato.db.dialects import dialect_for_url, dialect_named, dialect_of
from strato.db.dialects.base import POOL_SIZE, Dialect
from strato.db.dialects.sqlite import WAL_CHECKPOINT_BYTES
from strato.db.faults import Fault, busy, driver_message, fault_of
from strato.errors import InvalidInput

__all__ = [
    "NAMING",
    "WAL_CHECKPOINT_BYTES",
    "Base",
    "Dialect",
    "Fault",
    "UTCDateTime",
    "begin_write",
    "busy",
    "create_database_if_missing",
    "create_engine",
    "current_revision",
    "dialect_named",
    "dialect_of",
    "driver_cursor",
    "driver_message",
    "drop_database",
    "fault_of",
    "head_revision",
    "normalize_url",
    "ping",
    "read_only_problem",
    "session_factory",
    "upgrade",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
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
    """``url`` with the driver strato ships for its engine and the options it needs."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"database URL is not a valid SQLAlchemy URL: {exc}") from None
    return dialect_for_url(parsed).url(parsed).render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = POOL_SIZE) -> Engine:
    """An engine for ``url`` keeping up to ``pool_size`` connections open."""
    parsed = make_url(normalize_url(url))
    return dialect_for_url(parsed).create_engine(parsed, pool_size)


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
    dialect_of(session).begin_write(session)


def read_only_problem(engine: Engine) -> str | None:
    """Why the database would refuse writes now, or None when it takes them."""
    return dialect_of(engine).read_only_problem(engine)


# --- databases on a server ---------------------------------------------------------------


def create_database_if_missing(url: str) -> bool:
    """Create the database ``url`` names on its PostgreSQL or MariaDB server when it does
    not exist; True when it was created. SQLite files are created on first use."""
    target = make_url(normalize_url(url))
    dialect = dialect_for_url(target)
    name = target.database
    if dialect.is_file or not name:
        return False
    with dialect.server_connection(target) as conn:
        if dialect.database_exists(conn, name):
            return False
        return dialect.create_database(conn, name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names on its server, if it exists (not SQLite files)."""
    target = make_url(normalize_url(url))
    dialect = dialect_for_url(target)
    name = target.database
    if dialect.is_file or not name:
        return
    with dialect.server_connection(target) as conn:
        dialect.drop_database(conn, name)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


# Migrations live in strato.db.migrate; these names stay for the code that used them here.
from strato.db.migrate import current_revision, head_revision, upgrade  # noqa: E402
