"""MariaDB and MySQL, through PyMySQL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, func, insert, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from strato.db.dialects.base import Dialect, JsonKind, swapped_setting
from strato.db.faults import Fault, read_only_fault

# Error codes of a --read-only server and of a read-only transaction.
_READ_ONLY = frozenset({1290, 1792})
# What JSON_TYPE() calls each kind of value.
_JSON_TYPES: dict[str, tuple[str, ...]] = {
    "number": ("INTEGER", "DOUBLE", "DECIMAL", "UNSIGNED INTEGER"),
    "boolean": ("BOOLEAN",),
}


def _code(orig: BaseException) -> int | None:
    # PyMySQL's errors are (code, message) pairs.
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


class MariaDBDialect(Dialect):
    names = ("mysql", "mariadb")
    driver = "mysql+pymysql"

    def url(self, url: URL) -> URL:
        # "mariadb" in a URL is MySQL's dialect with PyMySQL too.
        if "+" not in url.drivername:
            url = url.set(drivername=self.driver)
        return url.update_query_dict({"charset": "utf8mb4"})

    # --- writing --------------------------------------------------------------------------

    # Rows go through the base's executemany, which PyMySQL makes multi-row INSERTs.

    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        # The values fit their columns, so IGNORE hides nothing but the duplicates.
        conn.execute(insert(table).prefix_with("IGNORE"), rows)

    @contextlib.contextmanager
    def no_lock_wait(self, session: Session) -> Iterator[None]:
        # MariaDB counts whole seconds.
        with swapped_setting(
            session.connection(),
            "SELECT @@SESSION.innodb_lock_wait_timeout",
            "SET SESSION innodb_lock_wait_timeout = {}",
            1,
        ):
            yield

    # --- reading --------------------------------------------------------------------------

    def json_is(
        self, kind: JsonKind, document: Any, path: Sequence[str], member: Any
    ) -> ColumnElement[bool]:
        return func.json_type(member).in_(_JSON_TYPES[kind])

    # --- faults ---------------------------------------------------------------------------

    def raised(self, orig: BaseException) -> bool:
        # Not imported: an error of a driver never loaded was not raised by it.
        driver = sys.modules.get("pymysql")
        return driver is not None and isinstance(orig, driver.Error)

    def fault(self, exc: BaseException, orig: BaseException) -> Fault | None:
        if _code(orig) in _READ_ONLY:
            return read_only_fault(orig)
        return super().fault(exc, orig)

    def message(self, orig: BaseException) -> str:
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
            return args[1]
        return str(orig)

    def read_only_problem(self, engine: Engine) -> str | None:
        with engine.connect() as conn:
            try:
                row = conn.execute(text("SELECT @@global.read_only, @@tx_read_only")).one()
            except DBAPIError:  # MySQL 8 renamed the session variable
                row = conn.execute(text("SELECT @@global.read_only, @@transaction_read_only")).one()
        if row[0] or row[1]:
            return "database is read-only (read_only is set)"
        return None

    # --- databases on a server ------------------------------------------------------------

    def database_exists(self, conn: Connection, name: str) -> bool:
        found = conn.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
            {"name": name},
        ).scalar()
        return bool(found)

    def create_database(self, conn: Connection, name: str) -> bool:
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        # utf8mb4_bin: ids compare byte for byte, as on PostgreSQL and SQLite.
        conn.execute(
            text(
                f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        )
        return True
