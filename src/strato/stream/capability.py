"""strato.stream as a platform capability: the ``[stream]`` settings, ``strato stream``
(the gateway's control server and the client), the streams page (``/streams``) and its
JSON (``/api/stream``), and, when ``stream.serve_in_up`` is set, the control server
running inside ``strato up`` beside the web app, whose sessions the page shows."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck
from strato.stream.settings import StreamSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator

log = logging.getLogger(__name__)


class StreamCapability:
    name = "stream"
    after: tuple[str, ...] = ()
    settings_section = StreamSettings
    migrations = None

    def nav(self) -> list[NavLink]:
        return [
            NavLink(
                "Streams",
                "/streams",
                "Memory-to-memory streams through this gateway (SciStream-compatible): "
                "sessions, their listeners and targets, bytes and rates live, release.",
            )
        ]

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.stream.api.routes import make_router as api_router
        from strato.stream.api.views import LocalGateway
        from strato.stream.web.pages import make_router as pages_router

        # The page's routes reach the control server through this; the lifespan attaches
        # it while one serves in this process.
        gateway = LocalGateway()
        app.state.stream_context = ctx
        app.state.stream_gateway = gateway
        app.include_router(api_router(gateway, auth))
        app.include_router(
            pages_router(gateway, auth, app.state.templates, app.state.nav, ctx.settings)
        )

    def register_cli(self, app: typer.Typer) -> None:
        from strato.stream.cli import register

        register(app)

    def on_start(self, ctx: Context) -> None:
        pass  # the control server runs on the web app's event loop (lifespan)

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        return []

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        ctx: Context | None = getattr(app.state, "stream_context", None)
        options = StreamSettings.of(ctx.settings) if ctx is not None else None
        if ctx is None or options is None or not options.serve_in_up:
            yield
            return
        from strato.stream.api.views import LocalGateway, Serving
        from strato.stream.control.auth import either, introspector, strato_tokens
        from strato.stream.control.server import start
        from strato.stream.dataserver import factory

        gateway: LocalGateway = app.state.stream_gateway

        state_dir = options.state_dir or ctx.settings.data_dir / "stream"
        # The same control server as `strato stream serve`: spares, and OAuth2 tokens
        # when an introspection endpoint is set.
        dataserver = factory.create(options.backend, state_dir, options.warm_forwarders)
        oauth = introspector(options)
        server = await start(options, dataserver, either(strato_tokens(ctx.identities), oauth))
        log.info("stream control server on %s (port %d)", options.listen, server.port)
        gateway.attach(Serving(server.sessions, options.backend, options.listen, server.port))
        try:
            yield
        finally:
            gateway.detach()
            await server.stop()
            if oauth is not None:
                await oauth.aclose()


capability = StreamCapability()
