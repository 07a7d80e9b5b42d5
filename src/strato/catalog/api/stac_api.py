"""The index node's STAC API 1.0, built with stac-fastapi, mounted in strato's app at /stac.

stac-fastapi builds its routes on an application of its own, with its own exception
handlers, middleware and OpenAPI settings. Here it is given a scratch application, and
only its routes under /stac are carried over into strato's: strato's error handlers
(RFC 9457 problems), middleware, title, docs and /openapi.json stay as they are, and the
routes appear there tagged "STAC".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from stac_fastapi.api.app import StacApi
from stac_fastapi.types.config import ApiSettings
from starlette.routing import BaseRoute

from strato import __version__, jsonio
from strato.auth import Principal, Scope
from strato.catalog.api import stac_links as links
from strato.catalog.api.stac_aggregation import StratoAggregationClient
from strato.catalog.api.stac_clients import (
    PRINCIPAL_STATE,
    StratoCoreClient,
    StratoFiltersClient,
    StratoTransactionsClient,
    Urls,
)
from strato.catalog.api.stac_extensions import (
    StratoAggregationExtension,
    StratoTransactionExtension,
)
from strato.catalog.api.stac_fast import fast_get_routes
from strato.catalog.api.stac_models import StratoFilterExtension, request_models, search_extensions
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.search.search import CatalogSearch
from strato.catalog.store import ItemStore
from strato.http.security import Authenticator
from strato.settings import Settings

PREFIX = "/stac"
TAG = "STAC"

_STAC = "https://api.stacspec.org"
_OGC = "http://www.opengis.net/spec"

# Exactly what the routes below do, each exercised by the tests (CQL2: what the filter
# compiler implements in full; its partial spatial, temporal and array support is not declared).
CONFORMANCE = (
    f"{_STAC}/v1.0.0/core",
    f"{_STAC}/v1.0.0/collections",
    f"{_STAC}/v1.0.0/ogcapi-features",
    f"{_STAC}/v1.0.0/ogcapi-features#fields",
    f"{_STAC}/v1.0.0/ogcapi-features#sort",
    f"{_STAC}/v1.0.0/ogcapi-features#query",
    f"{_STAC}/v1.0.0/ogcapi-features/extensions/transaction",
    f"{_STAC}/v1.0.0/item-search",
    f"{_STAC}/v1.0.0/item-search#fields",
    f"{_STAC}/v1.0.0/item-search#sort",
    f"{_STAC}/v1.0.0/item-search#query",
    f"{_STAC}/v1.0.0-rc.2/item-search#filter",
    f"{_STAC}/v1.0.0-rc.1/item-search#free-text",
    f"{_STAC}/v1.0.0-rc.1/collection-search",
    f"{_STAC}/v1.0.0-rc.1/collection-search#free-text",
    f"{_STAC}/v0.3.0/aggregation",
    f"{_OGC}/ogcapi-common-2/1.0/conf/simple-query",
    f"{_OGC}/ogcapi-features-1/1.0/conf/core",
    f"{_OGC}/ogcapi-features-1/1.0/conf/oas30",
    f"{_OGC}/ogcapi-features-1/1.0/conf/geojson",
    f"{_OGC}/ogcapi-features-3/1.0/conf/filter",
    f"{_OGC}/ogcapi-features-3/1.0/conf/features-filter",
    f"{_OGC}/cql2/1.0/conf/cql2-text",
    f"{_OGC}/cql2/1.0/conf/cql2-json",
    f"{_OGC}/cql2/1.0/conf/basic-cql2",
    f"{_OGC}/cql2/1.0/conf/advanced-comparison-operators",
    f"{_OGC}/cql2/1.0/conf/case-insensitive-comparison",
)


def publish_dependency(auth: Authenticator) -> Any:
    """strato's ``publish`` scope (401/403 as the Authenticator answers), remembering who."""
    require = auth.require(Scope.PUBLISH)

    def dependency(request: Request, principal: Principal = Depends(require)) -> Principal:
        setattr(request.state, PRINCIPAL_STATE, principal)
        return principal

    return dependency


def build_stac_routes(
    *,
    store: ItemStore,
    search: CatalogSearch,
    publisher: EventPublisher,
    auth: Authenticator,
    settings: Settings,
) -> list[APIRoute]:
    """The STAC API's routes, made by stac-fastapi on a scratch app with strato's clients."""
    urls = Urls(settings=settings)
    filters = StratoFilterExtension(
        client=StratoFiltersClient(store=store, search=search, urls=urls)
    )
    shaping = search_extensions(filters)
    models = request_models(shaping)
    api_settings = ApiSettings(
        _env_file=None,
        stac_fastapi_title=f"strato STAC index node {settings.node_name!r}",
        stac_fastapi_description="Items this node applied from the ESGF event stream.",
        stac_fastapi_version=__version__,
        stac_fastapi_landing_id=f"strato-{settings.node_name}",
    )
    extensions = [
        *shaping,
        StratoAggregationExtension(
            client=StratoAggregationClient(store=store, search=search, urls=urls),
            get_model=models.aggregate_get,
            post_model=models.aggregate_post,
        ),
        StratoTransactionExtension(
            client=StratoTransactionsClient(
                publisher=publisher,
                store=store,
                urls=urls,
                max_items=settings.catalog.max_limit,
                max_item_bytes=settings.catalog.max_item_bytes,
            ),
            settings=api_settings,
            dependency=publish_dependency(auth),
        ),
    ]
    core = StratoCoreClient(
        store=store, search=search, settings=settings, conformance_uris=list(CONFORMANCE)
    )
    scratch = FastAPI(openapi_url="/api", docs_url=None, redoc_url=None)
    StacApi(
        settings=api_settings,
        client=core,
        extensions=extensions,
        app=scratch,
        router=APIRouter(prefix=PREFIX),
        exceptions={},
        middlewares=[],
        search_get_request_model=models.search_get,
        search_post_request_model=models.search_post,
        items_get_request_model=models.items_get,
        collections_get_request_model=models.collections_get,
    )
    routes = [
        route
        for route in _flatten(scratch.router.routes)
        if route.path.startswith(f"{PREFIX}/")
        # stac-fastapi's liveness routes: strato has /healthz and /readyz.
        and not route.path.startswith(f"{PREFIX}/_mgmt")
    ]
    # The GET routes read their query without FastAPI's per-parameter validation when
    # it would come to the same (see stac_fast): the item search's main overhead.
    return fast_get_routes(routes)


def _flatten(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """The API routes of a router, also those of the routers it includes.

    FastAPI keeps an included router as one entry pointing at the original; stac-fastapi
    gives its routers their full paths and passes nothing but tags on including them, so
    the original routes are complete as they are.
    """
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
            continue
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            found += _flatten(included.routes)
    return found


def install_stac_api(
    app: FastAPI,
    *,
    store: ItemStore,
    search: CatalogSearch,
    publisher: EventPublisher,
    auth: Authenticator,
    settings: Settings,
) -> None:
    """Add the STAC API under /stac to strato's app."""
    reads, writes = APIRouter(), APIRouter()
    for route in build_stac_routes(
        store=store, search=search, publisher=publisher, auth=auth, settings=settings
    ):
        route.tags = []
        (writes if _is_write(route) else reads).routes.append(route)
    # A private catalog asks readers for the read scope. Only then: a dependency takes the
    # GET routes off their fast path (see stac_fast), and an open one needs none.
    guard = [] if settings.auth.anonymous_read else [Depends(auth.require(Scope.READ))]
    app.include_router(reads, tags=[TAG], dependencies=guard)
    app.include_router(writes, tags=[TAG])
    app.add_api_route(
        f"{PREFIX}/{links.SERVICE_DESC}",
        _service_description,
        methods=["GET"],
        include_in_schema=False,
    )


def _service_description(request: Request) -> Response:
    """The app's OpenAPI document (as /openapi.json) with the media type of its version,
    which the landing page's service-desc link names and STAC clients ask for."""
    app = request.app
    return Response(
        jsonio.dump_bytes(app.openapi()), media_type=links.openapi_type(app.openapi_version)
    )


def _is_write(route: APIRoute) -> bool:
    """The transactions (item writes, collection creation): they carry the publish scope
    of their own."""
    items = f"{PREFIX}/collections/{{collection_id}}/items"
    methods = route.methods or set()
    if route.path in (items, f"{PREFIX}/collections"):
        return "POST" in methods
    return route.path == f"{items}/{{item_id}}" and bool(methods & {"PUT", "PATCH", "DELETE"})
