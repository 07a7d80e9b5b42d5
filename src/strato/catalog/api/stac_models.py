"""Request models of the STAC API routes, built on stac-fastapi's.

stac-fastapi's own models check some parameters themselves (and answer in their own error
format) and cap ``limit`` silently; here those parameters stay as sent and are checked in
:mod:`strato.catalog.api.stac_params`, so that every route reports a bad value alike.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run
time from the ``__init__`` attrs generates.
"""

from typing import Annotated, Any, Literal

import attr
from fastapi import Query
from pydantic import BaseModel, Field, model_validator
from stac_fastapi.api.models import ItemCollectionUri, create_request_model
from stac_fastapi.extensions.core import (
    FieldsExtension,
    FilterExtension,
    FreeTextExtension,
    QueryExtension,
    SortExtension,
    TokenPaginationExtension,
)
from stac_fastapi.extensions.core.collection_search.request import (
    BaseCollectionSearchGetRequest,
)
from stac_fastapi.extensions.core.filter.request import FilterExtensionGetRequest
from stac_fastapi.types.extension import ApiExtension
from stac_fastapi.types.search import (
    APIRequest,
    BaseSearchGetRequest,
    BaseSearchPostRequest,
    str2list,
)

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

BBoxParam = Annotated[str | None, Query(description=_BBOX)]
DatetimeParam = Annotated[str | None, Query(description=_DATETIME)]
LimitParam = Annotated[int | None, Query(description=_LIMIT, json_schema_extra={"minimum": 1})]


@attr.s
class SearchGetRequest(BaseSearchGetRequest):
    """GET /search: bbox, datetime and limit kept as sent, checked by the client."""

    bbox: BBoxParam = attr.ib(default=None)  # type: ignore[assignment]
    datetime: DatetimeParam = attr.ib(default=None)
    intersects: Annotated[str | None, Query(description=_INTERSECTS)] = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)


@attr.s
class ItemsGetRequest(ItemCollectionUri):
    """GET /collections/{collection_id}/items."""

    bbox: BBoxParam = attr.ib(default=None)  # type: ignore[assignment]
    datetime: DatetimeParam = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)


@attr.s
class CollectionsGetRequest(BaseCollectionSearchGetRequest):
    """GET /collections: the collection search's bbox, datetime, q, limit and offset."""

    bbox: BBoxParam = attr.ib(default=None)  # type: ignore[assignment]
    datetime: DatetimeParam = attr.ib(default=None)
    limit: LimitParam = attr.ib(default=None)
    offset: Annotated[
        int | None,
        Query(description="Collections to skip (paging).", json_schema_extra={"minimum": 0}),
    ] = attr.ib(default=None)


class SearchPostRequest(BaseSearchPostRequest):
    """POST /search; bbox, datetime, intersects and limit checked by the client."""

    # Any JSON here, so that text or an object answers 400 naming bbox like every other
    # bad bbox (stac_params), not a 422 of the model.
    bbox: Any = Field(
        None,
        description=_BBOX,
        json_schema_extra={"type": "array", "items": {"type": "number"}},
    )
    datetime: str | None = Field(None, description=_DATETIME)
    intersects: dict[str, Any] | None = Field(  # type: ignore[assignment]
        None, description="A GeoJSON geometry; items intersecting its bounding box."
    )
    limit: int | None = Field(10, description=_LIMIT, json_schema_extra={"minimum": 1})

    @model_validator(mode="before")
    @classmethod
    def validate_spatial(cls, values: Any) -> Any:
        # Replaces stac-pydantic's, which fails on a body that is not an object; such a
        # body is left to the model's own type check. bbox with intersects is refused
        # by the client.
        return values


FilterLangParam = Annotated[
    str | None, Query(alias="filter-lang", description="cql2-text (default) or cql2-json.")
]


@attr.s
class FilterGetRequest(FilterExtensionGetRequest):
    # filter-lang is checked by the client, so that a wrong one answers 400 like the rest.
    filter_lang: FilterLangParam = attr.ib(default=None)  # type: ignore[assignment]


class FilterPostRequest(BaseModel):
    """A filter in CQL2 JSON, or in CQL2 text with ``filter-lang: cql2-text``."""

    filter_expr: dict[str, Any] | str | None = Field(
        None, alias="filter", description="A CQL2 JSON object, or CQL2 text."
    )
    filter_crs: str | None = Field(None, alias="filter-crs", description="Only CRS84 is supported.")
    filter_lang: Literal["cql2-json", "cql2-text"] | None = Field(
        None, alias="filter-lang", description="cql2-json (default) or cql2-text."
    )


class FreeTextPostRequest(BaseModel):
    q: str | list[str] | None = Field(
        None, description="Free-text terms: a list, or one comma-separated string."
    )


def _aggregations_converter(
    val: Annotated[
        str | None,
        Query(description="Comma-separated names of aggregations, see /aggregations."),
    ] = None,
) -> list[str] | None:
    return str2list(val)


@attr.s
class AggregationsGetRequest(APIRequest):
    aggregations: list[str] | None = attr.ib(default=None, converter=_aggregations_converter)


class AggregationsPostRequest(BaseModel):
    aggregations: list[str] | None = Field(
        None, description="Names of aggregations, see /aggregations."
    )


@attr.s
class StratoFilterExtension(FilterExtension):
    """The filter extension with strato's request models (text in POST, lang checked)."""

    GET = FilterGetRequest
    POST = FilterPostRequest  # type: ignore[assignment]


@attr.s
class StratoFreeTextExtension(FreeTextExtension):
    POST = FreeTextPostRequest  # type: ignore[assignment]


def search_extensions(
    filter_extension: FilterExtension,
) -> list[ApiExtension]:
    """The extensions that shape item searches (GET/POST /search, items, aggregate)."""
    return [
        filter_extension,
        FieldsExtension(),
        SortExtension(),
        QueryExtension(),
        StratoFreeTextExtension(),
        TokenPaginationExtension(),
    ]


@attr.s
class RequestModels:
    search_get: type[APIRequest] = attr.ib()
    search_post: type[BaseModel] = attr.ib()
    items_get: type[APIRequest] = attr.ib()
    collections_get: type[APIRequest] = attr.ib()
    aggregate_get: type[APIRequest] = attr.ib()
    aggregate_post: type[BaseModel] = attr.ib()


def request_models(extensions: list[ApiExtension]) -> RequestModels:
    def get(name: str, base: type[APIRequest], mixins: list[Any] | None = None) -> Any:
        return create_request_model(
            name, base_model=base, extensions=extensions, mixins=mixins, request_type="GET"
        )

    def post(name: str, mixins: list[Any] | None = None) -> Any:
        return create_request_model(
            name,
            base_model=SearchPostRequest,
            extensions=extensions,
            mixins=mixins,
            request_type="POST",
        )

    collections = create_request_model(
        "CollectionsGetRequest",
        base_model=CollectionsGetRequest,
        extensions=[StratoFreeTextExtension()],
        request_type="GET",
    )
    return RequestModels(
        search_get=get("SearchGetRequest", SearchGetRequest),
        search_post=post("SearchPostRequest"),
        items_get=get("ItemsGetRequest", ItemsGetRequest),
        collections_get=collections,  # type: ignore[arg-type]
        aggregate_get=get("AggregateGetRequest", SearchGetRequest, [AggregationsGetRequest]),
        aggregate_post=post("AggregatePostRequest", [AggregationsPostRequest]),
    )
