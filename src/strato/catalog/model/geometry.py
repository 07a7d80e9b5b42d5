"""Places: one check of a bbox, one walk of a GeoJSON geometry, and how envelopes meet.

Every door that takes a place uses these (the STAC ``bbox`` and ``intersects`` of GET and
POST, CQL2 spatial literals, the esg-search ``bbox``, the items events carry, the
collection search's extents), so a box or a geometry one door accepts, every door
accepts. A place is searched by its envelope: west, south, east, north in WGS 84, a
west east of its east crossing the antimeridian.

Pure: a problem is a :class:`GeometryError` whose text names no field, so that each door
says which of its parameters is wrong in its own error type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class GeometryError(ValueError):
    """What is wrong with a bbox or a geometry, in words the sender can act on."""


class Envelope(NamedTuple):
    """A box in WGS 84 degrees (a tuple, so it is also the ``(w, s, e, n)`` of a request)."""

    west: float
    south: float
    east: float
    north: float


def _is_number(value: Any) -> bool:
    # JSON's true and false are not numbers, though Python's bool is an int.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_bbox(values: Sequence[Any]) -> Envelope:
    """A 2D (w, s, e, n) or 3D (w, s, bottom, e, n, top) bbox, checked, as its envelope."""
    for value in values:
        if value.__class__ is float and math.isfinite(value):
            continue  # the usual case, tested first: search requests come through here
        if not _is_number(value):
            if isinstance(value, float):
                raise GeometryError("numbers must be finite")
            raise GeometryError(f"{value!r} is not a number")
    if len(values) not in (4, 6):
        raise GeometryError(f"has 4 or 6 numbers, not {len(values)}")
    half = len(values) // 2
    west, south = float(values[0]), float(values[1])
    east, north = float(values[half]), float(values[half + 1])
    if half == 3 and values[5] < values[2]:
        raise GeometryError("the top elevation is below the bottom one")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise GeometryError("longitudes must be within [-180, 180]")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise GeometryError("latitudes must be within [-90, 90]")
    if south > north:
        raise GeometryError("the southern latitude is north of the northern one")
    # west > east is allowed: a box across the antimeridian.
    return Envelope(west, south, east, north)


# How deep a geometry's coordinates nest in lists above its positions.
_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}
TYPES = (*_DEPTH, "GeometryCollection")
_SHAPES = {
    "Point": "a position [lon, lat]",
    "MultiPoint": "a list of positions",
    "LineString": "a list of positions",
    "MultiLineString": "a list of lists of positions",
    "Polygon": "a list of rings, each a list of positions",
    "MultiPolygon": "a list of polygons, each a list of rings",
}
# RFC 7946 advises against nesting collections at all; a bound keeps the walk shallow.
MAX_COLLECTION_NESTING = 4


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def geometry_envelope(geometry: Any) -> Envelope | None:
    """The envelope of a GeoJSON geometry, checked; None for an empty one (no positions).

    An envelope of positions does not cross the antimeridian: a geometry that does is,
    as RFC 7946 asks, cut there into parts, whose envelope then spans the globe's width.
    """
    lons: list[float] = []
    lats: list[float] = []
    _walk(geometry, lons, lats, 0)
    if not lons:
        return None
    return Envelope(min(lons), min(lats), max(lons), max(lats))


def _walk(geometry: Any, lons: list[float], lats: list[float], nesting: int) -> None:
    # A dict is by far the usual case; the class test spares the ABC check.
    if geometry.__class__ is not dict and not isinstance(geometry, Mapping):
        raise GeometryError(f"{_show(geometry)} is not a GeoJSON geometry")
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise GeometryError("a GeometryCollection needs a list of geometries")
        if nesting >= MAX_COLLECTION_NESTING:
            raise GeometryError(f"GeometryCollections nest at most {MAX_COLLECTION_NESTING} deep")
        for member in members:
            _walk(member, lons, lats, nesting + 1)
        return
    depth = _DEPTH.get(kind) if isinstance(kind, str) else None
    if depth is None:
        raise GeometryError(
            f"unknown geometry type {kind!r}; a GeoJSON geometry is one of {', '.join(TYPES)}"
        )
    if "coordinates" not in geometry:
        raise GeometryError(f"a {kind} needs coordinates")
    _positions(str(kind), geometry["coordinates"], depth, lons, lats)


def _positions(kind: str, coords: Any, depth: int, lons: list[float], lats: list[float]) -> None:
    if depth == 0:
        _position(coords, lons, lats)
        return
    if not isinstance(coords, list):
        raise GeometryError(f"the coordinates of a {kind} are {_SHAPES[kind]}")
    if depth > 1:
        for part in coords:
            _positions(kind, part, depth - 1, lons, lats)
        return
    for position in coords:
        # Most positions are two floats in range: taken without a call (items carry a
        # geometry each, and ingest checks them all); anything else gets the full check.
        if (
            position.__class__ is list
            and len(position) == 2
            and position[0].__class__ is float
            and position[1].__class__ is float
            and -180 <= position[0] <= 180
            and -90 <= position[1] <= 90
        ):
            lons.append(position[0])
            lats.append(position[1])
        else:
            _position(position, lons, lats)


def _position(coords: Any, lons: list[float], lats: list[float]) -> None:
    if not (isinstance(coords, list) and len(coords) >= 2 and all(map(_is_number, coords))):
        raise GeometryError(f"{_show(coords)} is not a position [lon, lat]")
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeometryError("positions must be longitude, latitude within WGS 84")
    lons.append(lon)
    lats.append(lat)


def _spans(west: float, east: float) -> tuple[tuple[float, float], ...]:
    return ((west, 180.0), (-180.0, east)) if west > east else ((west, east),)


def envelopes_meet(a: Envelope, b: Envelope) -> bool:
    """Whether two envelopes share a point; either may cross the antimeridian."""
    if a.south > b.north or a.north < b.south:
        return False
    return any(
        w1 <= e2 and w2 <= e1
        for w1, e1 in _spans(a.west, a.east)
        for w2, e2 in _spans(b.west, b.east)
    )


def polygon(box: Sequence[float]) -> dict[str, Any]:
    """The GeoJSON Polygon of a (west, south, east, north) box."""
    west, south, east, north = box
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}
