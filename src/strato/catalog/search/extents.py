"""Where and when: bbox and geometry literals as envelopes, time literals as intervals,
and the SQL that intersects them with an item's bbox and time extent columns.

An envelope whose west is east of its east crosses the antimeridian, and so may an
item's bbox. A date in an interval covers its whole day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from strato.catalog.store import ItemRow, parse_datetime
from strato.errors import InvalidInput

Condition = ColumnElement[bool]


@dataclass(frozen=True)
class Interval:
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Envelope:
    west: float
    south: float
    east: float
    north: float


def check_bbox(bbox: Sequence[Any], where: str = "bbox") -> Envelope:
    if len(bbox) == 6:
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    if len(bbox) != 4 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in bbox
    ):
        raise InvalidInput(f"{where}: expected 4 (or 6) numbers west, south, east, north")
    west, south, east, north = (float(v) for v in bbox)
    if not (-90 <= south <= north <= 90):
        raise InvalidInput(f"{where}: latitudes must be within -90..90 and south <= north")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidInput(f"{where}: longitudes must be within -180..180")
    return Envelope(west, south, east, north)


def bbox_condition(bbox: Sequence[float]) -> Condition:
    return envelopes_intersect([check_bbox(bbox)])


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
    if isinstance(node, Mapping) and "bbox" in node:
        bbox = node["bbox"]
        if not isinstance(bbox, list):
            raise InvalidInput(f"filter: '{op}': a bbox is a list of 4 or 6 numbers")
        return [check_bbox(bbox, f"filter: '{op}' bbox")]
    if not isinstance(node, Mapping) or not isinstance(node.get("type"), str):
        raise InvalidInput(f"filter: '{op}' needs a GeoJSON geometry or a bbox, not {show(node)}")
    points = list(_points(op, node))
    if not points:
        return []
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    return [check_bbox([min(lons), min(lats), max(lons), max(lats)], f"filter: '{op}' geometry")]


def _points(op: str, geometry: Mapping[str, Any]) -> Iterable[tuple[float, float]]:
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise InvalidInput(f"filter: '{op}': a GeometryCollection needs geometries")
        for member in members:
            if not isinstance(member, Mapping):
                raise InvalidInput(f"filter: '{op}': {show(member)} is not a geometry")
            yield from _points(op, member)
        return
    depth = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }.get(str(kind))
    if depth is None:
        raise InvalidInput(f"filter: '{op}': unknown geometry type {kind!r}")
    yield from _positions(op, geometry.get("coordinates"), depth)


def _positions(op: str, coords: Any, depth: int) -> Iterable[tuple[float, float]]:
    if depth == 0:
        if (
            isinstance(coords, list)
            and len(coords) >= 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        ):
            yield float(coords[0]), float(coords[1])
            return
        raise InvalidInput(f"filter: '{op}': {show(coords)} is not a position [lon, lat]")
    if not isinstance(coords, list):
        raise InvalidInput(f"filter: '{op}': geometry coordinates are malformed")
    for part in coords:
        yield from _positions(op, part, depth - 1)
