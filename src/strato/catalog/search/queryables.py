"""The STAC queryables of a node: JSON Schema of what filters may use.

The item columns, then each facet items have (in one collection, if asked), with the
enum of its values when there are at most :data:`ENUM_LIMIT` of them; found with
index skip scans (:mod:`strato.catalog.search.facets`), not by reading every facet row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from strato.catalog.search.facets import distinct_values, facet_names
from strato.catalog.search.filters import FIELDS, GEOMETRY
from strato.catalog.store import CollectionRow
from strato.errors import NotFound

# Facets with more distinct values than this get no enum.
ENUM_LIMIT = 500
JSON_SCHEMA = "https://json-schema.org/draft/2019-09/schema"


def queryables(
    session: Session, collection_id: str | None = None, *, url: str | None = None
) -> dict[str, Any]:
    """The queryables of the node, or of ``collection_id`` (NotFound if there is none).

    ``url`` is the schema's ``$id``; by default a path relative to the STAC API's root.
    """
    s = session
    if collection_id is not None and s.get(CollectionRow, collection_id) is None:
        raise NotFound(f"no collection {collection_id!r}")
    names = facet_names(s, collection_id)
    enums = {
        name: distinct_values(s, name, cap=ENUM_LIMIT, collection_id=collection_id)
        for name in names
    }
    properties: dict[str, Any] = {name: _field_schema(name) for name in FIELDS}
    properties[GEOMETRY] = {
        "title": "Geometry (its bounding box is what s_intersects compares)",
        "$ref": "https://geojson.org/schema/Geometry.json",
    }
    for name in names:
        schema: dict[str, Any] = {
            "title": name,
            "type": "string",
            "description": "A facet; on a list-valued item, any element may match. "
            "Comparisons compare text.",
        }
        values = enums[name]
        if values is not None:
            schema["enum"] = values
        properties[name] = schema
    where = "this catalog" if collection_id is None else f"collection {collection_id}"
    default = "queryables" if collection_id is None else f"collections/{collection_id}/queryables"
    return {
        "$schema": JSON_SCHEMA,
        "$id": url or default,
        "type": "object",
        "title": f"Queryables of {where}",
        "properties": properties,
        # Filters may name any other property: it is read from each item (a scan), and an
        # item without it has it null.
        "additionalProperties": True,
    }


def _field_schema(name: str) -> dict[str, Any]:
    f = FIELDS[name]
    schema: dict[str, Any] = {"title": f.title}
    if f.kind == "timestamp":
        schema.update(type="string", format="date-time")
    else:
        schema["type"] = f.kind
    return schema
