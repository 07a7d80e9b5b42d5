"""Request models of the STAC API routes: what each route reads from a query or a body.

GET models are attrs classes read by FastAPI as a dependency (``Depends()``): the
parameters of the ``__init__`` attrs writes are the query parameters, each a text or an
integer, so that the routes' fast path (:mod:`strato.catalog.api.stac_fast`) can read
them too. Comma-separated lists are split by converters, whose annotation FastAPI sees.
POST models are pydantic models of the JSON body.

Values are kept as sent and checked in :mod:`strato.catalog.api.stac_params`, so that
every route reports a bad value alike; only the types are FastAPI's and pydantic's to
check (a 422 naming the member).

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run
time from the ``__init__`` attrs generates.
"""

from typing import Annotated, Any, Literal

import attr
from fastapi import Path, Query
from pydantic import BaseModel, Field
from stac_pydantic.api.extensions.sort import SortExtension

_BBOX = (
    "Only items whose bbox intersects this one: west,south,east,north (WGS 84); "
    "6 numbers with elevations also work."
)
_DATETIME = (
    "An RFC 3339 date-time or an interval start/end, either end may be open (..): "
    "2000-01-01T00:00:00Z/2014-12-31T23:59:59Z"
)
_LIMIT = "Items per page, 1 to the node's catalog.max_limit (default 10)."
_INTERSECTS = "A GeoJSON geometry (URL-encoded JSON); items intersecting its bounding box."

Text = str | None
BBoxParam = Annotated[Text, Query(description=_BBOX)]
DatetimeParam = Annotated[Text, Query(description=_DATETIME)]
LimitParam = Annotated[int | None, Query(description=_LIMIT, json_schema_extra={"minimum": 1})]
CollectionIdParam = Annotated[str, Path(description="Collection ID")]


def _split(val: Text) -> list[str] | None:
    return val.split(",") if val else None


# Converters of comma-separated parameters into lists (empty: not given); FastAPI reads
# the parameter of each as the query parameter, with its description.


def _collections(
    val: Annotated[Text, Query(description="Collection ids, comma-separated.")] = None,
) -> list[str] | None:
    return _split(val)


def _ids(
    val: Annotated[Text, Query(description="Item ids, comma-separated.")] = None,
) -> list[str] | None:
    return _split(val)


def _fields(
    val: Annotated[
        Text,
        Query(
            description="Fields to include, or with '-' to exclude, comma-separated: "
            "-assets,properties.title"
        ),
    ] = None,
) -> list[str] | None:
    return _split(val)


def _sortby(
    val: Annotated[
        Text,
        Query(
            description="Properties to sort by, comma-separated, each prefixed '+' "
            "(ascending, the default) or '-' (descending): -datetime,id"
        ),
    ] = None,
) -> list[str] | None:
    return _split(val)


def _q(
    val: Annotated[Text, Query(description="Free-text terms, comma-separated.")] = None,
) -> list[str] | None:
    return _split(val)


def _aggregations(
    val: Annotated[
        Text, Query(description="Comma-separated names of aggregations, see /aggregations.")
    ] = None,
) -> list[str] | None:
    return _split(val)


@attr.s(kw_only=True)
class RequestModel:
    def values(self) -> dict[str, Any]:
        """The parameters by name (``filter`` is ``filter_expr``, as in the POST body)."""
        return dict(vars(self))


@attr.s(kw_only=True)
class SearchWhere(RequestModel):
    """Where GET /search and /aggregate look for items."""

    collections: list[str] | None = attr.ib(default=None, converter=_collections)
    ids: list[str] | None = attr.ib(default=None, converter=_ids)
    bbox: BBoxParam = attr.ib(default=None)
    datetime: DatetimeParam = attr.ib(default=None)
    intersects: Annotated[Text, Query(description=_INTERSECTS)] = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)


@attr.s(kw_only=True)
class ItemsWhere(RequestModel):
    """Where GET /collections/{collection_id}/items looks for items."""

    collection_id: CollectionIdParam = attr.ib()
    bbox: BBoxParam = attr.ib(default=None)
    datetime: DatetimeParam = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)


@attr.s(kw_only=True)
class ShapingParams(RequestModel):
    """The extensions' parameters (filter, fields, sort, query, free text, paging), on
    every route that searches items; after the ``Where`` ones (attrs takes the fields of
    the bases in reverse method resolution order)."""

    filter_expr: Annotated[
        Text, Query(alias="filter", description="A CQL2 filter, in the filter-lang.")
    ] = attr.ib(default=None)
    filter_crs: Annotated[
        Text, Query(alias="filter-crs", description="Only CRS84 is supported.")
    ] = attr.ib(default=None)
    # Checked by the client, so that a wrong one answers 400 like the rest.
    filter_lang: Annotated[
        Text, Query(alias="filter-lang", description="cql2-text (default) or cql2-json.")
    ] = attr.ib(default=None)
    fields: list[str] | None = attr.ib(default=None, converter=_fields)
    sortby: list[str] | None = attr.ib(default=None, converter=_sortby)
    query: Annotated[
        Text,
        Query(description='The query extension: JSON {"property": {"op": value}}.'),
    ] = attr.ib(default=None)
    q: list[str] | None = attr.ib(default=None, converter=_q)
    token: Annotated[Text, Query(description="The page to read (next/prev links).")] = attr.ib(
        default=None
    )


@attr.s(kw_only=True, collect_by_mro=True)
class SearchGetRequest(ShapingParams, SearchWhere):
    """GET /search."""


@attr.s(kw_only=True, collect_by_mro=True)
class ItemsGetRequest(ShapingParams, ItemsWhere):
    """GET /collections/{collection_id}/items."""


@attr.s(kw_only=True, collect_by_mro=True)
class AggregateGetRequest(SearchGetRequest):
    """GET /aggregate and /collections/{collection_id}/aggregate."""

    aggregations: list[str] | None = attr.ib(default=None, converter=_aggregations)


@attr.s(kw_only=True)
class CollectionsGetRequest(RequestModel):
    """GET /collections: the collection search's bbox, datetime, q, limit and offset."""

    bbox: BBoxParam = attr.ib(default=None)
    datetime: DatetimeParam = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)
    offset: Annotated[
        int | None,
        Query(description="Collections to skip (paging).", json_schema_extra={"minimum": 0}),
    ] = attr.ib(default=None)
    q: list[str] | None = attr.ib(default=None, converter=_q)


class PostFields(BaseModel):
    """The fields extension in a POST body."""

    include: set[str] | None = set()
    exclude: set[str] | None = set()


class SearchPostRequest(BaseModel):
    """POST /search; bbox, datetime, intersects and limit checked by the client."""

    collections: list[str] | None = None
    ids: list[str] | None = None
    # Any JSON here, so that text or an object answers 400 naming bbox like every other
    # bad bbox (stac_params), not a 422 of the model.
    bbox: Any = Field(
        None,
        description=_BBOX,
        json_schema_extra={"type": "array", "items": {"type": "number"}},
    )
    intersects: dict[str, Any] | None = Field(
        None, description="A GeoJSON geometry; items intersecting its bounding box."
    )
    datetime: str | None = Field(None, description=_DATETIME)
    limit: int | None = Field(10, description=_LIMIT, json_schema_extra={"minimum": 1})
    filter_expr: dict[str, Any] | str | None = Field(
        None, alias="filter", description="A CQL2 JSON object, or CQL2 text."
    )
    filter_crs: str | None = Field(None, alias="filter-crs", description="Only CRS84 is supported.")
    filter_lang: Literal["cql2-json", "cql2-text"] | None = Field(
        None, alias="filter-lang", description="cql2-json (default) or cql2-text."
    )
    fields: PostFields | None = Field(PostFields(), description="Fields to include and to exclude.")
    sortby: list[SortExtension] | None = Field(None, description="Sort keys, first first.")
    query: dict[str, dict[str, Any]] | None = Field(
        None, description='The query extension: {"property": {"op": value}}.'
    )
    q: str | list[str] | None = Field(
        None, description="Free-text terms: a list, or one comma-separated string."
    )
    token: str | None = Field(None, description="The page to read (next/prev links).")


class AggregatePostRequest(SearchPostRequest):
    aggregations: list[str] | None = Field(
        None, description="Names of aggregations, see /aggregations."
    )


@attr.s(kw_only=True)
class NoParams(RequestModel):
    """A route that reads nothing from its query."""


@attr.s(kw_only=True)
class CollectionUri(RequestModel):
    collection_id: CollectionIdParam = attr.ib()


@attr.s(kw_only=True)
class ItemUri(CollectionUri):
    item_id: Annotated[str, Path(description="Item ID")] = attr.ib()
