"""CQL2 literals and LIKE patterns in SQL: comparisons, the kind of a literal, and
patterns escaped the same way on every engine (what :class:`FilterCompiler` builds on).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement

from strato.catalog.store import ItemRow
from strato.db import Dialect
from strato.errors import InvalidInput

Kind = Literal["string", "timestamp", "boolean", "number"]
Condition = ColumnElement[bool]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# The LIKE escape character: not a backslash, which MySQL also treats as one in literals.
_ESCAPE = "!"


# --- LIKE ---


def like_parts(pattern: str) -> list[tuple[str, str]]:
    """A CQL2 pattern as ``(kind, char)``: kind ``%``, ``_`` or ``c`` for a literal char."""
    parts: list[tuple[str, str]] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            parts.append(("c", next(chars, "\\")))
        elif ch in "%_":
            parts.append((ch, ch))
        else:
            parts.append(("c", ch))
    return parts


def like(expr: ColumnElement[Any], pattern: str, *, casei: bool, dialect: Dialect) -> Condition:
    """CQL2 ``like``: ``%`` any run, ``_`` one character, backslash escapes; case counts."""
    parts = like_parts(pattern.lower() if casei else pattern)
    if not casei:
        # Where the engine's LIKE ignores case (SQLite's), its own case-sensitive match.
        exact = dialect.case_sensitive_like(expr, parts)
        if exact is not None:
            return exact
    sql = "".join(
        k if k in "%_" else f"{_ESCAPE}{c}" if c in f"%_{_ESCAPE}" else c for k, c in parts
    )
    return expr.like(sql, escape=_ESCAPE)


# --- literals ---


def arity(op: str, args: list[Any], n: int) -> None:
    if len(args) != n:
        raise InvalidInput(
            f"filter: '{op}' takes {n} argument{'s' if n > 1 else ''}, not {len(args)}"
        )


def number_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        # CQL2 text makes every number a float; 1 was written as "1".
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return None


def cmp(op: str, expr: ColumnElement[Any], value: Any) -> Condition:
    return cast(Condition, _OPERATORS[op](expr, value))


def item_member(name: str) -> Any:
    """Property ``name`` of an item's JSON (``name`` matched :data:`PROPERTY_NAME`)."""
    return ItemRow.content[("properties", name)]


def literal_kind(value: Any) -> Kind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"
