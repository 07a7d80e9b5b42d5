"""strato.data as a platform capability: routers, pages, CLI group, start-up work."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck
from strato.data.settings import DataSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator

log = logging.getLogger(__name__)


class DataCapability:
    name = "data"
    after: tuple[str, ...] = ()
    settings_section = DataSettings
    migrations = "strato.data.migrations"

    def nav(self) -> list[NavLink]:
        return [
            NavLink(
                "Datasets",
                "/datasets",
                "Datasets served as Zarr over HTTP, raw chunk passthrough, STAC and intake "
                "catalogs, plots and diagnostics.",
            )
        ]

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.data.api.fast_chunks import RawChunkFastPath
        from strato.data.api.routes import make_router
        from strato.data.datasets.compute import configure_dask
        from strato.data.service import DataService
        from strato.data.web.pages import make_pages_router

        configure_dask(ctx.settings)
        service = DataService(ctx.sessions, ctx.settings)
        app.state.data = service
        # What other capabilities (the catalog) may know of the served datasets.
        ctx.provide_datasets(service)
        app.include_router(
            make_pages_router(service, auth, ctx.settings, app.state.templates, app.state.nav)
        )
        # Diagnostics run as processes when a capability offers them (installed after
        # this one: looked up per request).
        app.include_router(make_router(service, auth, ctx.settings, lambda: ctx.analytics))
        # Inside the request-context middleware (create_app adds it after the
        # capabilities), so fast answers carry request ids and count in the metrics.
        app.add_middleware(
            RawChunkFastPath,
            service=service,
            cache_control=DataSettings.of(ctx.settings).cache_control,
            anonymous_read=ctx.settings.auth.anonymous_read,
        )

    def register_cli(self, app: typer.Typer) -> None:
        from strato.data.cli import register

        register(app)

    def on_start(self, ctx: Context) -> None:
        """On `strato up`: the demo collection, in the background so the server starts now."""
        if not DataSettings.of(ctx.settings).demo:
            return
        log.info("demo data: generating and registering in the background")
        from strato.data.demo.ensure import ensure_demo
        from strato.data.service import DataService

        def make_demo() -> None:
            service = DataService(ctx.sessions, ctx.settings)
            try:
                added = ensure_demo(service)
                if added:
                    log.info("demo datasets registered: %s", ", ".join(added))
            except Exception:
                log.exception("demo data could not be generated")
            finally:
                service.close()

        threading.Thread(target=make_demo, name="strato-demo", daemon=True).start()

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        # The core's checks (database, data directory) are all that serving datasets needs.
        return []

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        yield
        service = getattr(app.state, "data", None)
        if service is not None:
            service.close()


capability = DataCapability()
