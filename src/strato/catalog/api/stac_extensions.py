"""stac-fastapi extensions whose routes strato registers its own way.

- Aggregation: stac-fastapi's collection-level routes would not pass the collection id
  from the path on to the client; these do.
- Transactions: the item routes and the creation of a collection on this node (other
  nodes make it from the first event that names it), bodies taken as plain JSON so the
  ESGF event constructors check them and name the JSON path of what is wrong, each route
  behind strato's ``publish`` scope, and a 202 with the request id to monitor instead of
  the item.

No ``from __future__ import annotations``: FastAPI reads the endpoint annotations, some
of which are request models only known when the routes are built.
"""

from collections.abc import Callable
from typing import Annotated, Any

import attr
from fastapi import APIRouter, Body, Depends, FastAPI, Path, Request
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel
from stac_fastapi.api.models import CollectionUri, EmptyRequest, ItemUri
from stac_fastapi.api.routes import create_async_endpoint, sync_to_async
from stac_fastapi.extensions.core import AggregationExtension, TransactionExtension
from stac_fastapi.extensions.core.aggregation import AggregationConformanceClasses
from stac_fastapi.extensions.core.transaction import TransactionConformanceClasses
from stac_fastapi.extensions.core.transaction.request import PartialItem
from stac_fastapi.extensions.core.transaction.transaction import _patch_item_schema
from stac_fastapi.types.search import APIRequest

CollectionId = Annotated[str, Path(description="Collection ID")]

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


def _get_endpoint(
    func: Callable[..., Any], model: type[APIRequest], scoped: bool
) -> Callable[..., Any]:
    call = sync_to_async(func)  # type: ignore[no-untyped-call]
    if scoped:

        async def scoped_endpoint(
            request: Request, collection_id: CollectionId, request_data: Any = Depends(model)
        ) -> Any:
            return await call(request=request, collection_id=collection_id, **request_data.kwargs())

        return scoped_endpoint

    async def endpoint(request: Request, request_data: Any = Depends(model)) -> Any:
        return await call(request=request, **request_data.kwargs())

    return endpoint


def _post_endpoint(
    func: Callable[..., Any], model: type[BaseModel], scoped: bool
) -> Callable[..., Any]:
    call = sync_to_async(func)  # type: ignore[no-untyped-call]
    if scoped:

        async def scoped_endpoint(
            request: Request,
            collection_id: CollectionId,
            search_request: model,  # type: ignore[valid-type]
        ) -> Any:
            return await call(search_request, request=request, collection_id=collection_id)

        return scoped_endpoint

    async def endpoint(request: Request, search_request: model) -> Any:  # type: ignore[valid-type]
        return await call(search_request, request=request)

    return endpoint


@attr.s
class StratoAggregationExtension(AggregationExtension):
    """Aggregation over the same parameters as item search, for all items or one collection."""

    get_model: type[APIRequest] = attr.ib(kw_only=True)
    post_model: type[BaseModel] = attr.ib(kw_only=True)
    conformance_classes: list[str] = attr.ib(
        factory=lambda: [AggregationConformanceClasses.AGGREGATION.value]
    )

    def register(self, app: FastAPI) -> None:
        router = APIRouter(prefix=app.state.router_prefix)
        client = self.client
        router.add_api_route(
            "/aggregations",
            create_async_endpoint(client.get_aggregations, EmptyRequest),
            methods=["GET"],
            name="Aggregations",
            summary="Aggregations available over all items",
        )
        router.add_api_route(
            "/collections/{collection_id}/aggregations",
            create_async_endpoint(client.get_aggregations, CollectionUri),
            methods=["GET"],
            name="Collection Aggregations",
            summary="Aggregations available over one collection's items",
        )
        for scoped, path in (
            (False, "/aggregate"),
            (True, "/collections/{collection_id}/aggregate"),
        ):
            where = "one collection's items" if scoped else "the items"
            router.add_api_route(
                path,
                _get_endpoint(client.aggregate, self.get_model, scoped),
                methods=["GET"],
                name="Collection Aggregate" if scoped else "Aggregate",
                summary=f"Term counts over {where} a search matches",
            )
            router.add_api_route(
                path,
                _post_endpoint(client.aggregate, self.post_model, scoped),
                methods=["POST"],
                name="Collection Aggregate" if scoped else "Aggregate",
                summary=f"Term counts over {where} a search matches",
            )
        app.include_router(router)


@attr.s
class PostItemRequest(CollectionUri):
    item: Annotated[dict[str, Any], Body(description="A STAC Item or a FeatureCollection.")] = (
        attr.ib()
    )


@attr.s
class PostCollectionRequest(APIRequest):
    collection: Annotated[dict[str, Any], Body(description="A STAC Collection.")] = attr.ib()


@attr.s
class PutItemRequest(ItemUri):
    item: Annotated[dict[str, Any], Body(description="The whole new STAC Item.")] = attr.ib()


@attr.s
class PatchItemRequest(ItemUri):
    # Any: which kind of patch it is depends on the content type, checked by the client.
    patch: Annotated[Any, Body(description="A JSON merge patch or JSON Patch operations.")] = (
        attr.ib()
    )


@attr.s
class StratoTransactionExtension(TransactionExtension):
    """Item transactions behind ``dependency`` (strato's publish scope), answering 202."""

    dependency: Callable[..., Any] = attr.ib(kw_only=True)
    conformance_classes: list[str] = attr.ib(
        factory=lambda: [TransactionConformanceClasses.ITEMS.value]
    )

    def register(self, app: FastAPI) -> None:
        router = APIRouter(prefix=app.state.router_prefix)
        guarded: list[DependsParam] = [Depends(self.dependency)]
        client = self.client
        item_path = "/collections/{collection_id}/items/{item_id}"
        router.add_api_route(
            "/collections",
            create_async_endpoint(client.create_collection, PostCollectionRequest),
            methods=["POST"],
            name="Create Collection",
            status_code=201,
            responses={201: {"description": "Created on this node; its URL in Location."}},
            dependencies=guarded,
            summary="Create a collection on this node (items are published into it)",
        )
        router.add_api_route(
            "/collections/{collection_id}/items",
            create_async_endpoint(client.create_item, PostItemRequest),
            methods=["POST"],
            name="Create Item",
            status_code=202,
            responses=_ACCEPTED,
            dependencies=guarded,
            openapi_extra=_ITEM_BODY,
            summary="Publish items: one event per item of an Item or FeatureCollection",
        )
        router.add_api_route(
            item_path,
            create_async_endpoint(client.update_item, PutItemRequest),
            methods=["PUT"],
            name="Update Item",
            status_code=202,
            responses=_ACCEPTED,
            dependencies=guarded,
            openapi_extra=_ITEM_BODY,
            summary="Replace an item (an update event)",
        )
        router.add_api_route(
            item_path,
            create_async_endpoint(client.patch_item, PatchItemRequest),
            methods=["PATCH"],
            name="Patch Item",
            status_code=202,
            responses=_ACCEPTED,
            dependencies=guarded,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json-patch+json": {"schema": _patch_item_schema},
                        "application/merge-patch+json": {"schema": PartialItem.model_json_schema()},
                        "application/json": {"schema": PartialItem.model_json_schema()},
                    },
                }
            },
            summary="Change part of an item (a patch event)",
        )
        router.add_api_route(
            item_path,
            create_async_endpoint(client.delete_item, ItemUri),
            methods=["DELETE"],
            name="Delete Item",
            status_code=202,
            responses=_ACCEPTED,
            dependencies=guarded,
            summary="Retract an item (ESGF: kept, no longer latest, retracted)",
        )
        app.include_router(router)
