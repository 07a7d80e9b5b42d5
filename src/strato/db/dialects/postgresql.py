"""PostgreSQL, through psycopg 3."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Connection, Engine, Table, func, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from strato.db.cursors import driver_cursor
from strato.db.dialects.base import Dialect, JsonKind
from strato.db.faults import Fault, read_only_fault

# SQLSTATE read_only_sql_transaction.
_READ_ONLY = "25006"
# What json_typeof() calls each kind of value.
_JSON_TYPES: dict[str, tuple[str, ...]] = {"number": ("number",), "boolean": ("boolean",)}


class PostgreSQLDialect(Dialect):
    names = ("postgresql",)
    aliases = ("postgres",)
    driver = "postgresql+psycopg"
    nulls_sort_high = True
    maintenance_database: ClassVar[str | None] = "postgres"

    # --- writing --------------------------------------------------------------------------

    def _insert_values(
        self,
        conn: Connection,
        table: Table,
        names: Sequence[str],
        values: Sequence[Sequence[Any]],
    ) -> None:
        if conn.dialect.driver != "psycopg":  # another driver, named in the URL
            super()._insert_values(conn, table, names, values)
            return
        # psycopg's executemany sends a statement per row: COPY streams them.
        columns = ", ".join(f'"{name}"' for name in names)
        statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
        with driver_cursor(conn, statement) as cursor, cursor.copy(statement) as stream:
            for row in values:
                stream.write_row(row)

    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)

    @contextlib.contextmanager
    def no_lock_wait(self, session: Session) -> Iterator[None]:
        # Ends with the transaction.
        session.connection().exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
        yield

    # --- reading --------------------------------------------------------------------------

    def json_is(
        self, kind: JsonKind, document: Any, path: Sequence[str], member: Any
    ) -> ColumnElement[bool]:
        return func.json_typeof(member).in_(_JSON_TYPES[kind])

    # --- faults ---------------------------------------------------------------------------

    def raised(self, orig: BaseException) -> bool:
        # Not imported: an error of a driver never loaded was not raised by it.
        driver = sys.modules.get("psycopg")
        return driver is not None and isinstance(orig, driver.Error)

    def fault(self, exc: BaseException, orig: BaseException) -> Fault | None:
        if getattr(orig, "sqlstate", None) == _READ_ONLY:
            return read_only_fault(orig)
        return super().fault(exc, orig)

    def read_only_problem(self, engine: Engine) -> str | None:
        with engine.connect() as conn:
            flag = conn.execute(text("SELECT current_setting('transaction_read_only')")).scalar()
        if flag == "on":
            return "database is read-only (transaction_read_only is on)"
        return None

    # --- databases on a server ------------------------------------------------------------

    def database_exists(self, conn: Connection, name: str) -> bool:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        return bool(found)

    def create_database(self, conn: Connection, name: str) -> bool:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        try:
            conn.execute(text(f"CREATE DATABASE {quoted}"))
        except sa_exc.ProgrammingError:  # created by someone else meanwhile
            return False
        return True

    def drop_database(self, conn: Connection, name: str) -> None:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
