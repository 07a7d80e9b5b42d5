"""strato.catalog as a platform capability: the node's STAC API, legacy search, pages,
publications, its bus connection and consumer, and the CLI commands."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator

log = logging.getLogger(__name__)


class CatalogCapability:
    name = "catalog"

    def nav(self) -> list[NavLink]:
        return [
            NavLink(
                "Catalog",
                "/catalog",
                "This node's STAC catalog fed by the event stream: facets, search, items and "
                "the live view of events.",
            ),
            NavLink(
                "STAC API",
                "/stac/",
                "STAC API 1.0 with filter (CQL2), fields, sort, query, free text, aggregation "
                "and transactions; legacy search at /esg-search/search.",
            ),
        ]

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.bus import open_bus
        from strato.catalog.api.esg_search_routes import make_esg_search_router
        from strato.catalog.api.publications import make_publications_router
        from strato.catalog.api.stac_api import install_stac_api
        from strato.catalog.ingest.node import CatalogNode
        from strato.catalog.ingest.publisher import EventPublisher
        from strato.catalog.search.search import CatalogSearch
        from strato.catalog.store import ItemStore
        from strato.catalog.web.pages import make_catalog_pages_router

        settings = ctx.settings
        store = ItemStore(ctx.sessions)
        from strato.catalog.model.cql2_limits import filter_limits

        search = CatalogSearch(
            ctx.sessions,
            max_limit=settings.catalog.max_limit,
            filter_limits=filter_limits(settings.catalog),
        )
        bus = open_bus(settings.bus.url, settings.data_dir)
        node = CatalogNode(
            settings=settings,
            store=store,
            search=search,
            bus=bus,
            publisher=EventPublisher(bus, settings.catalog.topic_strategy, connected=False),
        )
        data = getattr(app.state, "data", None)
        if data is not None:
            from strato.catalog.ingest.datalink import DatasetLink

            node.datalink = DatasetLink(data, store, settings.node_name, settings.base_url)
        app.state.catalog = node
        # Before the STAC API, whose /stac/collections/{id} routes would otherwise shadow it.
        app.include_router(make_publications_router(store, settings, auth))
        install_stac_api(
            app, store=store, search=search, publisher=node.publisher, auth=auth, settings=settings
        )
        app.include_router(make_esg_search_router(search, settings, auth))
        app.include_router(
            make_catalog_pages_router(
                search, store, settings, app.state.templates, app.state.nav, auth
            )
        )

    def register_cli(self, app: typer.Typer) -> None:
        from strato.catalog.cli import register
        from strato.catalog.demo.playground_cli import register as register_playground

        register(app)
        register_playground(app)

    def on_start(self, ctx: Context) -> None:
        return None

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        from strato.catalog.ingest.node import CatalogNode

        node = getattr(app.state, "catalog", None)
        if not isinstance(node, CatalogNode):
            return []
        # The node publishes what its transactions accept, and consumes: it needs its bus.
        return [ReadinessCheck("bus", node.bus_problem)]

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        from strato.catalog.ingest.node import CatalogNode

        node = getattr(app.state, "catalog", None)
        if not isinstance(node, CatalogNode):
            yield
            return
        await node.start(consume=node.settings.catalog.consume)
        try:
            yield
        finally:
            await node.stop()


capability = CatalogCapability()
