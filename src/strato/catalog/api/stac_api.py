"""The index node's STAC API 1.0, at /stac in strato's app: plain FastAPI routes.

The routes (:mod:`strato.catalog.api.stac_routes`) are added to strato's own router, so
strato's error handlers (RFC 9457 problems), middleware, title, docs and /openapi.json
are theirs, and they appear there tagged "STAC". Why not stac-fastapi: docs/design.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request, Response

from strato import jsonio
from strato.auth import Principal, Scope
from strato.catalog.api import stac_links as links
from strato.catalog.api.stac_aggregation import AggregationClient
from strato.catalog.api.stac_clients import (
    PRINCIPAL_STATE,
    CoreClient,
    QueryablesClient,
    TransactionsClient,
    Urls,
)
from strato.catalog.api.stac_fast import read_route_class
from strato.catalog.api.stac_routes import ReadClients, add_read_routes, add_write_routes
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.search.search import CatalogSearch
from strato.catalog.settings import CatalogSettings
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
    urls = Urls(settings=settings)
    clients = ReadClients(
        core=CoreClient(
            store=store, search=search, settings=settings, conformance_uris=list(CONFORMANCE)
        ),
        queryables=QueryablesClient(store=store, search=search, urls=urls),
        aggregation=AggregationClient(store=store, search=search, urls=urls),
    )
    # A private catalog asks readers for the read scope. Only then: a dependency takes the
    # GET routes off their fast path (see stac_fast), and an open one needs none.
    guard = [] if settings.auth.anonymous_read else [Depends(auth.require(Scope.READ))]
    # On the app's own router, not an included one: the fast path reads only such routes.
    add_read_routes(
        app.router,
        PREFIX,
        clients,
        route_class=read_route_class(CatalogSettings.of(settings).stac_fast_path),
        dependencies=guard,
        tags=[TAG],
    )
    add_write_routes(
        app.router,
        PREFIX,
        TransactionsClient(
            publisher=publisher,
            store=store,
            urls=urls,
            max_items=CatalogSettings.of(settings).max_limit,
            max_item_bytes=CatalogSettings.of(settings).max_item_bytes,
        ),
        dependencies=[Depends(publish_dependency(auth))],
        tags=[TAG],
    )
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
