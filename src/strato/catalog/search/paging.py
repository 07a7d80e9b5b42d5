"""Sort orders and keyset paging tokens of the item search.

A token is the sort key of the row a page ends (or starts) at, with the row's pk to
break ties, as URL-safe base64 of JSON: it can be forged, but a forged token only moves
the page. The next page is the rows after that key in the sort order; the previous page
the rows before it, read in the reverse order.

NULL sort keys are where each engine puts them (PostgreSQL: above every value; SQLite
and MariaDB: below), so the order can use the indexes as they are; the "after" condition
follows the same rule, so pages on one engine neither overlap nor leave gaps.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, func, or_, select

from strato.catalog.store import FacetRow, ItemRow, is_facet
from strato.errors import InvalidInput

Direction = Literal["asc", "desc"]
KeyKind = Literal["string", "timestamp", "int"]

_COLUMNS: dict[str, tuple[ColumnElement[Any], KeyKind]] = {
    "id": (ItemRow.id.expression, "string"),
    "collection": (ItemRow.collection_id.expression, "string"),
    # The start of the item's time extent: its datetime, or its start_datetime.
    "datetime": (ItemRow.time_start.expression, "timestamp"),
    "start_datetime": (ItemRow.start_datetime.expression, "timestamp"),
    "end_datetime": (ItemRow.end_datetime.expression, "timestamp"),
    "version": (ItemRow.version.expression, "string"),
}
SORTABLE = tuple(_COLUMNS)
_VERSION = 1


@dataclass(frozen=True)
class SortKey:
    name: str
    direction: Direction
    expr: ColumnElement[Any]
    kind: KeyKind

    @property
    def reverse(self) -> SortKey:
        return SortKey(
            self.name, "desc" if self.direction == "asc" else "asc", self.expr, self.kind
        )

    def order(self, expr: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
        target = self.expr if expr is None else expr
        return target.asc() if self.direction == "asc" else target.desc()


def sort_keys(sortby: Sequence[tuple[str, str]]) -> list[SortKey]:
    """The keys of ``sortby`` (default: datetime, newest first), ending with the pk."""
    keys: list[SortKey] = []
    seen: set[str] = set()
    for name, direction in sortby or [("datetime", "desc")]:
        bare = name.removeprefix("properties.")
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"sortby: direction of {name!r} must be asc or desc")
        if bare in seen:
            continue
        seen.add(bare)
        if bare in _COLUMNS:
            expr, kind = _COLUMNS[bare]
        elif is_facet(bare):
            # A list-valued facet sorts by its smallest value.
            expr = (
                select(func.min(FacetRow.value))
                .where(FacetRow.item_pk == ItemRow.pk, FacetRow.name == bare)
                .scalar_subquery()
            )
            kind = "string"
        else:
            raise InvalidInput(
                f"sortby: cannot sort by {name!r}; sortable are {', '.join(SORTABLE)} "
                "and facet properties (cmip6:*, cordex:*, project)"
            )
        keys.append(SortKey(bare, "asc" if direction == "asc" else "desc", expr, kind))
    # The pk breaks ties, in the first key's direction so one index serves both ways.
    keys.append(SortKey("pk", keys[0].direction, ItemRow.pk.expression, "int"))
    return keys


def _signature(keys: Sequence[SortKey]) -> str:
    return ",".join(f"{k.name}:{k.direction}" for k in keys)


def _encode_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def encode_token(keys: Sequence[SortKey], values: Sequence[Any], *, backward: bool) -> str:
    body = {
        "v": _VERSION,
        "s": _signature(keys),
        "k": [_encode_value(v) for v in values],
        "b": backward,
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, keys: Sequence[SortKey]) -> tuple[list[Any], bool]:
    """``(key values, backward)`` of ``token``, checked against ``keys``."""
    invalid = InvalidInput("token is not valid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(body, dict) or body.get("v") != _VERSION:
        raise invalid
    if body.get("s") != _signature(keys):
        raise InvalidInput("token is not valid for this sortby: it was made for another order")
    values, backward = body.get("k"), body.get("b")
    if not isinstance(values, list) or len(values) != len(keys) or not isinstance(backward, bool):
        raise invalid
    return [_decode_value(v, k, invalid) for v, k in zip(values, keys, strict=True)], backward


def _decode_value(value: Any, key: SortKey, invalid: InvalidInput) -> Any:
    if value is None and key.kind != "int":
        return None
    if key.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if key.kind == "string" and isinstance(value, str):
        return value
    if key.kind == "timestamp" and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise invalid from None
        if parsed.tzinfo is not None:
            return parsed
    raise invalid


def after(
    keys: Sequence[SortKey], values: Sequence[Any], *, nulls_high: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``."""
    terms = []
    for i, key in enumerate(keys):
        beyond = _beyond(key, values[i], nulls_high)
        if beyond is None:
            continue
        equal = [_equal(k, v) for k, v in zip(keys[:i], values[:i], strict=True)]
        terms.append(and_(*equal, beyond))
    return or_(*terms) if terms else false()


def _equal(key: SortKey, value: Any) -> ColumnElement[bool]:
    return key.expr.is_(None) if value is None else key.expr == value


def _beyond(key: SortKey, value: Any, nulls_high: bool) -> ColumnElement[bool] | None:
    """Rows whose ``key`` comes strictly after ``value``; None when none can."""
    ascending = key.direction == "asc"
    if value is None:
        # NULL is the largest (nulls_high) or smallest key: after it come all values or none.
        return key.expr.is_not(None) if ascending != nulls_high else None
    beyond: ColumnElement[bool] = key.expr > value if ascending else key.expr < value
    if ascending == nulls_high:
        # NULLs sort past every value in this direction.
        return or_(beyond, key.expr.is_(None))
    return beyond
