"""STAC API request parameters as a :class:`SearchRequest`, and the fields extension.

What GET query strings and POST bodies say (bbox, datetime, intersects, sortby, fields,
query, filter, q, limit) is parsed and checked here, without FastAPI, so that both
methods and every route answer a bad value the same way: InvalidInput naming the
parameter and saying what is wrong with it.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strato.catalog.model import geometry
from strato.catalog.model.geometry import GeometryError
from strato.catalog.search.search import Direction, SearchRequest
from strato.catalog.store import parse_datetime
from strato.errors import InvalidInput

BBox = tuple[float, float, float, float]
Interval = tuple[datetime | None, datetime | None]

CRS84 = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
)
# Top-level members of a STAC Item; any other field name is taken as a property.
ITEM_MEMBERS = frozenset(
    {
        "type",
        "stac_version",
        "stac_extensions",
        "id",
        "geometry",
        "bbox",
        "properties",
        "links",
        "assets",
        "collection",
    }
)
# What the fields extension recommends returning when only excludes are given.
DEFAULT_FIELDS = (
    "id",
    "type",
    "geometry",
    "bbox",
    "links",
    "assets",
    "properties.datetime",
)
# Kept whatever is excluded: tiny, and without them a client cannot tell items apart.
ALWAYS_FIELDS = ("id", "type", "stac_version", "collection")

_MAX_TERMS = 100


def invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[{"field": field, "message": message}])


# --- single parameters --------------------------------------------------------------------


def parse_limit(value: int | None, max_limit: int, *, default: int = 10) -> int:
    """A page size; one above ``max_limit`` is that maximum, as OGC API - Features says
    (a server answers with at most what it allows instead of refusing)."""
    if value is None:
        return min(default, max_limit)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("limit", f"must be an integer, not {value!r}")
    if value < 1:
        raise invalid("limit", f"must be at least 1, not {value}")
    return min(value, max_limit)


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_bbox(value: str | Sequence[Any] | None, field: str = "bbox") -> BBox | None:
    """A 2D or 3D bbox (comma-separated text or numbers) as (west, south, east, north)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = [_number(part) for part in value.split(",")]
        except ValueError:
            raise invalid(field, f"{value[:100]!r} is not a list of numbers") from None
    try:
        return geometry.check_bbox(value)
    except GeometryError as exc:
        raise invalid(field, str(exc)) from None


def _instant(text: str, field: str) -> datetime:
    parsed = parse_datetime(text.strip())
    if parsed is None:
        raise invalid(
            field, f"{text[:60]!r} is not an RFC 3339 date-time such as 2014-01-01T00:00:00Z"
        )
    return parsed


def parse_interval(value: str | None, field: str = "datetime") -> Interval | None:
    """``t``, ``t1/t2``, ``../t2``, ``t1/..`` (an empty end is open as well)."""
    if value is None:
        return None
    if not value.strip():
        raise invalid(field, "is empty")
    parts = value.split("/")
    if len(parts) == 1:
        instant = _instant(parts[0], field)
        return instant, instant
    if len(parts) != 2:
        raise invalid(field, "an interval has one '/' between its start and end")
    start = None if parts[0].strip() in ("", "..") else _instant(parts[0], field)
    end = None if parts[1].strip() in ("", "..") else _instant(parts[1], field)
    if start is None and end is None:
        raise invalid(field, "an interval open at both ends is not allowed")
    if start is not None and end is not None and start > end:
        raise invalid(field, "the start is after the end")
    return start, end


def parse_intersects(value: str | Mapping[str, Any] | Any | None) -> BBox | None:
    """The bounding box of a GeoJSON geometry (JSON text or an object)."""
    if value is None:
        return None
    shape: Any = value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            shape = json.loads(value)
        except (ValueError, RecursionError):
            raise invalid("intersects", "is not a JSON GeoJSON geometry") from None
    elif hasattr(value, "model_dump"):
        shape = value.model_dump(mode="json")
    try:
        envelope = geometry.geometry_envelope(shape)
    except GeometryError as exc:
        raise invalid("intersects", str(exc)) from None
    if envelope is None:
        raise invalid("intersects", "the geometry has no positions")
    return envelope


def parse_terms(value: str | Sequence[str] | None, field: str) -> list[str]:
    """Comma-separated text or a list, with empty entries dropped."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    terms = []
    for part in parts:
        if not isinstance(part, str):
            raise invalid(field, f"{part!r} is not a string")
        if part.strip():
            terms.append(part.strip())
    if len(terms) > _MAX_TERMS:
        raise invalid(field, f"at most {_MAX_TERMS} entries, not {len(terms)}")
    return terms


def property_name(field: str) -> str:
    """``properties.x`` and ``x`` both name property ``x``."""
    return field[len("properties.") :] if field.startswith("properties.") else field


def parse_sortby(value: Sequence[Any] | None) -> list[tuple[str, Direction]]:
    """GET ``+a,-b`` (already split) or POST ``[{"field", "direction"}]``."""
    if not value:
        return []
    order: list[tuple[str, Direction]] = []
    for entry in value:
        if isinstance(entry, str):
            # A '+' that was not percent-encoded arrives as a space.
            text = entry.strip() if entry.startswith(" ") else entry
            direction: Direction = "desc" if text.startswith("-") else "asc"
            name = text[1:] if text[:1] in "+-" and text else text
        else:
            raw = entry if isinstance(entry, Mapping) else entry.model_dump()
            name = str(raw.get("field") or "")
            # The POST model gives the direction as an enum member.
            given = raw.get("direction", "asc")
            given = getattr(given, "value", given)
            direction = "desc" if str(given).lower() == "desc" else "asc"
        name = property_name(name.strip())
        if not name:
            raise invalid("sortby", "a sort key names a field")
        order.append((name, direction))
    return order


@dataclass(frozen=True)
class Fields:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


def _field_path(name: str) -> str:
    name = name.strip()
    head = name.split(".", 1)[0]
    return name if head in ITEM_MEMBERS else f"properties.{name}"


def parse_fields_get(value: Sequence[str] | None) -> Fields | None:
    if value is None:
        return None
    include, exclude = [], []
    for entry in value:
        text = entry.strip()
        if not text:
            continue
        if text.startswith("-"):
            exclude.append(_field_path(text[1:]))
        else:
            include.append(_field_path(text[1:] if text.startswith("+") else text))
    return Fields(tuple(include), tuple(exclude))


def parse_fields_post(include: Iterable[str] | None, exclude: Iterable[str] | None) -> Fields:
    return Fields(
        tuple(_field_path(f) for f in include or () if f.strip()),
        tuple(_field_path(f) for f in exclude or () if f.strip()),
    )


def _get_path(doc: Mapping[str, Any], path: list[str]) -> tuple[bool, Any]:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _set_path(doc: dict[str, Any], path: list[str], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = copy.deepcopy(value)


def _drop_path(doc: dict[str, Any], path: list[str]) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def select_fields(item: Mapping[str, Any], fields: Fields) -> dict[str, Any]:
    """The item reduced as the fields extension says: (default + include) - exclude."""
    wanted = sorted(set(DEFAULT_FIELDS) | set(fields.include) | set(ALWAYS_FIELDS), key=len)
    out: dict[str, Any] = {}
    for name in wanted:
        path = name.split(".")
        found, value = _get_path(item, path)
        if found:
            _set_path(out, path, value)
    for name in fields.exclude:
        if name not in ALWAYS_FIELDS:
            _drop_path(out, name.split("."))
    # In the item's own order, as a reader expects it.
    return {key: out[key] for key in item if key in out}


def parse_query(value: str | Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """The query extension's ``{"property": {"op": value}}`` (JSON text in GET)."""
    if value is None:
        return None
    parsed: Any = value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            raise invalid("query", 'is not JSON: {"property": {"op": value}}') from None
    if not isinstance(parsed, Mapping):
        raise invalid("query", 'is an object: {"property": {"op": value}}')
    out: dict[str, dict[str, Any]] = {}
    for name, ops in parsed.items():
        if not isinstance(ops, Mapping) or not ops:
            raise invalid(f"query.{name}", 'is an object of operators, e.g. {"eq": value}')
        out[property_name(str(name))] = dict(ops)
    return out


def parse_filter(
    expr: str | Mapping[str, Any] | None,
    lang: str | None,
    crs: str | None,
    *,
    text_parser: Callable[[str], dict[str, Any]],
    default_lang: str,
) -> dict[str, Any] | None:
    """A filter in CQL2 text or JSON, as CQL2 JSON."""
    if crs is not None and crs.strip() and crs.strip() not in CRS84:
        raise invalid("filter-crs", f"only {CRS84[0]} is supported")
    if expr is None or (isinstance(expr, str) and not expr.strip()):
        return None
    lang = lang or default_lang
    if lang not in ("cql2-text", "cql2-json"):
        raise invalid("filter-lang", f"is cql2-text or cql2-json, not {lang!r}")
    if isinstance(expr, Mapping):
        if lang != "cql2-json":
            raise invalid("filter", "a JSON object is CQL2 JSON: set filter-lang to cql2-json")
        return dict(expr)
    if lang == "cql2-text":
        return text_parser(expr)
    try:
        parsed = json.loads(expr)
    except (ValueError, RecursionError):
        raise invalid("filter", "is not JSON, as filter-lang=cql2-json says it is") from None
    if not isinstance(parsed, dict):
        raise invalid("filter", "CQL2 JSON is an object")
    return parsed


def and_filters(*filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    present = [dict(f) for f in filters if f]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return {"op": "and", "args": present}


def search_request(
    *,
    max_limit: int,
    collections: Sequence[str] | str | None = None,
    ids: Sequence[str] | str | None = None,
    bbox: str | Sequence[Any] | None = None,
    intersects: Any = None,
    datetime: str | None = None,
    filter: Mapping[str, Any] | None = None,
    query: Mapping[str, Mapping[str, Any]] | None = None,
    q: str | Sequence[str] | None = None,
    sortby: Sequence[tuple[str, Direction]] = (),
    limit: int | None = None,
    token: str | None = None,
    check_limit: bool = True,
) -> SearchRequest:
    box = parse_bbox(bbox)
    area = parse_intersects(intersects)
    if box is not None and area is not None:
        raise invalid("intersects", "bbox and intersects cannot both be given")
    return SearchRequest(
        collections=tuple(parse_terms(collections, "collections")),
        ids=tuple(parse_terms(ids, "ids")),
        bbox=box if box is not None else area,
        datetime=parse_interval(datetime),
        filter=filter,
        query=query,
        q=tuple(parse_terms(q, "q")),
        sortby=tuple(sortby),
        limit=parse_limit(limit, max_limit) if check_limit else 10,
        token=token or None,
    )
