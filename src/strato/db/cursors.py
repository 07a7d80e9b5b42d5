"""The DB-API cursor under a SQLAlchemy connection, for the few hot paths that need it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


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
