"""strato.stream as a platform capability: the ``[stream]`` settings, ``strato stream``
(the gateway's control server and the client), and, when ``stream.serve_in_up`` is set,
the control server running inside ``strato up`` beside the web app."""

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
        return []  # no page yet; the control plane is gRPC

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        # Only what the lifespan needs; nothing is served over HTTP.
        app.state.stream_context = ctx

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
        from strato.stream.control.auth import strato_tokens
        from strato.stream.control.server import start
        from strato.stream.dataserver import factory

        state_dir = options.state_dir or ctx.settings.data_dir / "stream"
        server = await start(
            options, factory.create(options.backend, state_dir), strato_tokens(ctx.identities)
        )
        log.info("stream control server on %s (port %d)", options.listen, server.port)
        try:
            yield
        finally:
            await server.stop()


capability = StreamCapability()
