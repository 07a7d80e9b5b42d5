"""strato.catalog as a platform capability: the node's STAC API, legacy search, pages,
publications, its bus connection and consumer, and the CLI commands."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck
from strato.catalog.settings import CatalogSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator

log = logging.getLogger(__name__)


class CatalogCapability:
    name = "catalog"
    # After the data capability, so the datasets it serves are there to be catalogued.
    after = ("data",)
    settings_section = CatalogSettings
    migrations = "strato.catalog.migrations"

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
        from strato.catalog.api.esg_search_routes import make_esg_search_router
        from strato.catalog.api.publications import make_publications_router
        from strato.catalog.api.stac_api import install_stac_api
        from strato.catalog.ingest.node import CatalogNode
        from strato.catalog.ingest.publisher import EventPublisher
        from strato.catalog.model.cql2_limits import filter_limits
        from strato.catalog.search.search import CatalogSearch
        from strato.catalog.store import ItemStore
        from strato.catalog.web.pages import make_catalog_pages_router

        settings = ctx.settings
        section = CatalogSettings.of(settings)
        store = ItemStore(ctx.sessions)
        search = CatalogSearch(
            ctx.sessions,
            max_limit=section.max_limit,
            filter_limits=filter_limits(section),
            compiled_statements=section.compiled_statements,
        )
        node = CatalogNode(
            settings=settings,
            store=store,
            search=search,
            bus=ctx.bus,
            publisher=EventPublisher(ctx.bus, section.topic_strategy, connected=False),
        )
        if ctx.datasets is not None:
            from strato.catalog.ingest.datalink import DatasetLink

            node.datalink = DatasetLink(ctx.datasets, store, settings.node_name, settings.base_url)
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
        serve_only = bool(getattr(app.state.context, "serve_only", False))
        await node.start(consume=CatalogSettings.of(node.settings).consume and not serve_only)
        try:
            yield
        finally:
            await node.stop()


capability = CatalogCapability()
