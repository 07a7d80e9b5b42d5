"""The STAC API's routes: plain FastAPI routes on strato's own router, under /stac.

Each route reads its request model (:mod:`strato.catalog.api.stac_models`) and hands it
to a client (:mod:`strato.catalog.api.stac_clients`, :mod:`strato.catalog.api.stac_aggregation`),
which answers the response. The reads are synchronous and run in the thread pool; the
GET ones are of the one shape the fast path reads, ``(request, [path], query=Depends(model))``
(:mod:`strato.catalog.api.stac_fast`). The writes (transactions) carry strato's publish
scope and answer 202 with the request id to monitor, or 201 for a collection.

No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, Any, TypeVar

import attr
from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from stac_pydantic import api
from starlette.concurrency import run_in_threadpool

from strato.catalog.api import stac_links as links
from strato.catalog.api import stac_models as models
from strato.catalog.api.stac_aggregation import AggregationClient
from strato.catalog.api.stac_clients import CoreClient, QueryablesClient, TransactionsClient
from strato.catalog.api.stac_models import CollectionIdParam
from strato.catalog.api.stac_transactions import JSON_PATCH, MERGE_PATCH

ItemIdParam = Annotated[str, Path(description="Item ID")]
M = TypeVar("M", bound=models.RequestModel)


@attr.s(kw_only=True, frozen=True)
class ReadClients:
    core: CoreClient = attr.ib()
    queryables: QueryablesClient = attr.ib()
    aggregation: AggregationClient = attr.ib()


class GeoJSONResponse(JSONResponse):
    """What the item routes answer (for the OpenAPI document: the clients answer)."""

    media_type = links.GEOJSON


class SchemaResponse(JSONResponse):
    """What the queryables routes answer (for the OpenAPI document)."""

    media_type = links.SCHEMA


def _ok(model: Any = None) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model}} if model is not None else {}


def _reader(call: Callable[[Request, M], Response], model: type[M]) -> Callable[..., Any]:
    """An endpoint ``(request, query=Depends(model))`` running ``call`` in the thread pool."""

    async def endpoint(request: Request, query: Any = Depends(model)) -> Response:
        return await run_in_threadpool(call, request, query)

    return endpoint


def add_read_routes(
    router: APIRouter,
    prefix: str,
    clients: ReadClients,
    *,
    route_class: type[APIRoute],
    dependencies: Sequence[DependsParam],
    tags: list[str],
) -> None:
    """The reads: core, collection search, queryables and aggregation, GET and POST.

    ``router`` is the app's own (``app.router``): the fast path (``route_class``) takes
    only routes there (see :class:`strato.catalog.api.stac_fast.QueryModelRoute`).
    """
    core, queryables, aggregation = clients.core, clients.queryables, clients.aggregation
    common: dict[str, Any] = {"dependencies": list(dependencies), "tags": tags}

    def add(
        method: str,
        path: str,
        endpoint: Callable[..., Any],
        name: str,
        model: Any = None,
        *,
        summary: str | None = None,
        response_class: type[JSONResponse] = JSONResponse,
    ) -> None:
        router.add_api_route(
            prefix + path,
            endpoint,
            methods=[method],
            name=name,
            summary=summary,
            responses=_ok(model),
            response_class=response_class,
            # The fast path reads GET routes' query models; a POST's body is FastAPI's.
            route_class_override=route_class if method == "GET" else None,
            **common,
        )

    get = partial(add, "GET")
    post = partial(add, "POST")

    get(
        "/",
        _reader(lambda r, _: core.landing_page(r), models.NoParams),
        "Landing Page",
        api.LandingPage,
    )
    get(
        "/conformance",
        _reader(lambda r, _: core.conformance(), models.NoParams),
        "Conformance Classes",
        api.Conformance,
    )
    get(
        "/collections/{collection_id}/items/{item_id}",
        _reader(lambda r, q: core.get_item(r, q.collection_id, q.item_id), models.ItemUri),
        "Get Item",
        api.Item,
        response_class=GeoJSONResponse,
    )

    async def post_search(request: Request, search_request: models.SearchPostRequest) -> Response:
        return await run_in_threadpool(core.post_search, request, search_request)

    post(
        "/search",
        post_search,
        "Search",
        api.ItemCollection,
        summary="Search",
        response_class=GeoJSONResponse,
    )
    get(
        "/search",
        _reader(core.get_search, models.SearchGetRequest),
        "Search",
        api.ItemCollection,
        response_class=GeoJSONResponse,
    )
    get(
        "/collections",
        _reader(core.all_collections, models.CollectionsGetRequest),
        "Get Collections",
        api.Collections,
    )
    get(
        "/collections/{collection_id}",
        _reader(lambda r, q: core.get_collection(r, q.collection_id), models.CollectionUri),
        "Get Collection",
        api.Collection,
    )
    get(
        "/collections/{collection_id}/items",
        _reader(core.item_collection, models.ItemsGetRequest),
        "Get ItemCollection",
        api.ItemCollection,
        response_class=GeoJSONResponse,
    )
    get(
        "/queryables",
        _reader(lambda r, _: queryables.get_queryables(r), models.NoParams),
        "Queryables",
        response_class=SchemaResponse,
    )
    get(
        "/collections/{collection_id}/queryables",
        _reader(lambda r, q: queryables.get_queryables(r, q.collection_id), models.CollectionUri),
        "Collection Queryables",
        response_class=SchemaResponse,
    )
    get(
        "/aggregations",
        _reader(lambda r, _: aggregation.get_aggregations(r), models.NoParams),
        "Aggregations",
        summary="Aggregations available over all items",
    )
    get(
        "/collections/{collection_id}/aggregations",
        _reader(
            lambda r, q: aggregation.get_aggregations(r, q.collection_id), models.CollectionUri
        ),
        "Collection Aggregations",
        summary="Aggregations available over one collection's items",
    )

    async def aggregate_get(
        request: Request, query: Any = Depends(models.AggregateGetRequest)
    ) -> Response:
        return await run_in_threadpool(aggregation.aggregate, request, query)

    async def aggregate_post(
        request: Request, search_request: models.AggregatePostRequest
    ) -> Response:
        return await run_in_threadpool(aggregation.aggregate, request, search_request)

    async def collection_aggregate_get(
        request: Request,
        collection_id: CollectionIdParam,
        query: Any = Depends(models.AggregateGetRequest),
    ) -> Response:
        return await run_in_threadpool(aggregation.aggregate, request, query, collection_id)

    async def collection_aggregate_post(
        request: Request,
        collection_id: CollectionIdParam,
        search_request: models.AggregatePostRequest,
    ) -> Response:
        return await run_in_threadpool(
            aggregation.aggregate, request, search_request, collection_id
        )

    everything = "Term counts over the items a search matches"
    one = "Term counts over one collection's items a search matches"
    get("/aggregate", aggregate_get, "Aggregate", summary=everything)
    post("/aggregate", aggregate_post, "Aggregate", summary=everything)
    scoped = "/collections/{collection_id}/aggregate"
    get(scoped, collection_aggregate_get, "Collection Aggregate", summary=one)
    post(scoped, collection_aggregate_post, "Collection Aggregate", summary=one)


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the events are on the bus; follow the monitor link.",
        "content": {"application/json": {}},
    }
}
_ITEM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A STAC Item, or for POST a FeatureCollection of Items.",
                }
            }
        },
    }
}
_JSON_PATCH = {
    "type": "array",
    "description": "JSON Patch operations (RFC 6902).",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string"},
            "from": {"type": "string"},
            "value": {},
        },
    },
}
_MERGE_PATCH = {"type": "object", "description": "A JSON merge patch of the item (RFC 7396)."}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_PATCH: {"schema": _JSON_PATCH},
            MERGE_PATCH: {"schema": _MERGE_PATCH},
            "application/json": {"schema": _MERGE_PATCH},
        },
    }
}


def add_write_routes(
    router: APIRouter,
    prefix: str,
    client: TransactionsClient,
    *,
    dependencies: Sequence[DependsParam],
    tags: list[str],
) -> None:
    """The transactions: item writes as events (202), collections created on this node."""
    common: dict[str, Any] = {"dependencies": list(dependencies), "tags": tags}
    item_path = prefix + "/collections/{collection_id}/items/{item_id}"

    async def create_collection(
        request: Request,
        collection: Annotated[dict[str, Any], Body(description="A STAC Collection.")],
    ) -> Response:
        return await client.create_collection(request, collection)

    async def create_item(
        request: Request,
        collection_id: CollectionIdParam,
        item: Annotated[dict[str, Any], Body(description="A STAC Item or a FeatureCollection.")],
    ) -> Response:
        return await client.create_item(request, collection_id, item)

    async def update_item(
        request: Request,
        collection_id: CollectionIdParam,
        item_id: ItemIdParam,
        item: Annotated[dict[str, Any], Body(description="The whole new STAC Item.")],
    ) -> Response:
        return await client.update_item(request, collection_id, item_id, item)

    async def patch_item(
        request: Request,
        collection_id: CollectionIdParam,
        item_id: ItemIdParam,
        # Any: which kind of patch it is depends on the content type, checked by the client.
        patch: Annotated[Any, Body(description="A JSON merge patch or JSON Patch operations.")],
    ) -> Response:
        return await client.patch_item(request, collection_id, item_id, patch)

    async def delete_item(
        request: Request, collection_id: CollectionIdParam, item_id: ItemIdParam
    ) -> Response:
        return await client.delete_item(request, collection_id, item_id)

    router.add_api_route(
        prefix + "/collections",
        create_collection,
        methods=["POST"],
        name="Create Collection",
        status_code=201,
        responses={201: {"description": "Created on this node; its URL in Location."}},
        summary="Create a collection on this node (items are published into it)",
        **common,
    )
    router.add_api_route(
        prefix + "/collections/{collection_id}/items",
        create_item,
        methods=["POST"],
        name="Create Item",
        status_code=202,
        responses=_ACCEPTED,
        openapi_extra=_ITEM_BODY,
        summary="Publish items: one event per item of an Item or FeatureCollection",
        **common,
    )
    router.add_api_route(
        item_path,
        update_item,
        methods=["PUT"],
        name="Update Item",
        status_code=202,
        responses=_ACCEPTED,
        openapi_extra=_ITEM_BODY,
        summary="Replace an item (an update event)",
        **common,
    )
    router.add_api_route(
        item_path,
        patch_item,
        methods=["PATCH"],
        name="Patch Item",
        status_code=202,
        responses=_ACCEPTED,
        openapi_extra=_PATCH_BODY,
        summary="Change part of an item (a patch event)",
        **common,
    )
    router.add_api_route(
        item_path,
        delete_item,
        methods=["DELETE"],
        name="Delete Item",
        status_code=202,
        responses=_ACCEPTED,
        summary="Retract an item (ESGF: kept, no longer latest, retracted)",
        **common,
    )
