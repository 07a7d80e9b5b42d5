"""Where and when: bbox and geometry literals as envelopes (checked by
:mod:`strato.catalog.model.geometry`), time literals as intervals, and the SQL that
intersects them with an item's bbox and time extent columns.

An envelope whose west is east of its east crosses the antimeridian, and so may an
item's bbox. A date in an interval covers its whole day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from strato.catalog.model import geometry
from strato.catalog.model.geometry import Envelope, GeometryError
from strato.catalog.store import ItemRow, parse_datetime
from strato.errors import InvalidInput

Condition = ColumnElement[bool]


@dataclass(frozen=True)
class Interval:
    start: datetime | None
    end: datetime | None


def checked_bbox(bbox: Sequence[Any], where: str = "bbox") -> Envelope:
    """``bbox`` as :func:`geometry.check_bbox` checks it; a problem is InvalidInput at ``where``."""
    try:
        return geometry.check_bbox(bbox)
    except GeometryError as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def bbox_condition(bbox: Sequence[float]) -> Condition:
    return envelopes_intersect([checked_bbox(bbox)])


def envelopes_intersect(envelopes: Sequence[Envelope]) -> Condition:
    """Items whose bbox intersects any of ``envelopes``; either may cross the antimeridian."""
    return or_(*(_intersects(e) for e in envelopes)) if envelopes else false()


def _intersects(env: Envelope) -> Condition:
    i = ItemRow
    lat = and_(i.south <= env.north, i.north >= env.south)
    spans = (
        [(env.west, 180.0), (-180.0, env.east)] if env.west > env.east else [(env.west, env.east)]
    )
    lon = []
    for west, east in spans:
        lon.append(
            or_(
                and_(i.west <= i.east, i.west <= east, i.east >= west),
                # The item itself crosses the antimeridian: [west, 180] and [-180, east].
                and_(i.west > i.east, or_(i.west <= east, i.east >= west)),
            )
        )
    return and_(lat, or_(*lon))


def time_condition(start: datetime | None, end: datetime | None) -> Condition:
    """Items whose time extent intersects [start, end]; None is an open end."""
    if start is not None and end is not None and start > end:
        raise InvalidInput("datetime: the start of the interval is after its end")
    return and_(
        ItemRow.time_start.is_not(None),
        true() if end is None else ItemRow.time_start <= end,
        true() if start is None else ItemRow.time_end >= start,
    )


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def date_or_none(text: str) -> datetime | None:
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None
    return None if day is None else datetime.combine(day, time(), UTC)


def timestamp(op: str, value: Any) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise InvalidInput(f"filter: '{op}': {show(value)} is not an RFC 3339 timestamp")
    return parsed


def date_literal(op: str, value: Any) -> datetime:
    parsed = date_or_none(value) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidInput(f"filter: '{op}': {show(value)} is not a date (YYYY-MM-DD)")
    return parsed


def instant(op: str, value: Any, *, end: bool) -> datetime | None:
    """One end of an interval literal; a date covers its whole day."""
    if isinstance(value, Mapping):
        value = value.get("timestamp", value.get("date"))
    if value == "..":
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed
        day = date_or_none(value)
        if day is not None:
            return day + timedelta(days=1, microseconds=-1) if end else day
    raise InvalidInput(f"filter: '{op}': {show(value)} is not a timestamp, a date or '..'")


def interval(op: str, node: Any) -> Interval:
    if isinstance(node, Mapping) and "interval" in node:
        bounds = node["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise InvalidInput(f"filter: '{op}': an interval has 2 bounds")
        start = instant(op, bounds[0], end=False)
        end = instant(op, bounds[1], end=True)
        if start is not None and end is not None and start > end:
            raise InvalidInput(f"filter: '{op}': the interval starts after it ends")
        return Interval(start, end)
    if isinstance(node, Mapping) and "timestamp" in node:
        t = timestamp(op, node["timestamp"])
        return Interval(t, t)
    if isinstance(node, Mapping) and "date" in node:
        day = date_literal(op, node["date"])
        return Interval(day, day + timedelta(days=1, microseconds=-1))
    raise InvalidInput(
        f"filter: '{op}' needs a timestamp, date or interval literal, not {show(node)}"
    )


def envelopes(op: str, node: Any) -> list[Envelope]:
    """The envelope of a CQL2 spatial literal (a bbox or a GeoJSON geometry); none for an
    empty geometry, which nothing intersects."""
    if isinstance(node, Mapping) and "bbox" in node:
        bbox = node["bbox"]
        if not isinstance(bbox, list):
            raise InvalidInput(f"filter: '{op}': a bbox is a list of 4 or 6 numbers")
        return [checked_bbox(bbox, f"filter: '{op}' bbox")]
    if not isinstance(node, Mapping) or not isinstance(node.get("type"), str):
        raise InvalidInput(f"filter: '{op}' needs a GeoJSON geometry or a bbox, not {show(node)}")
    try:
        envelope = geometry.geometry_envelope(node)
    except GeometryError as exc:
        raise InvalidInput(f"filter: '{op}' geometry: {exc}") from None
    return [] if envelope is None else [envelope]
