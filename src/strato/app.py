"""create_app(settings) -> FastAPI: the one web app of the platform."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.types import Message, Receive, Scope, Send

from strato import __version__
from strato.capabilities import CapabilityFailed, NavLink, load_capabilities, starting
from strato.context import Context
from strato.http.core_routes import make_core_router
from strato.http.faults import StorageFaultMiddleware
from strato.http.identity_routes import make_identity_router
from strato.http.metrics import Metrics
from strato.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from strato.http.problems import install_error_handlers
from strato.http.security import Authenticator
from strato.settings import Settings

LifespanHandler = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("strato.web", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    return Jinja2Templates(env=env)


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    """Build the web app with the capabilities ``settings`` switch on. A given context is
    borrowed; otherwise one is opened and closed with the app's lifespan.

    A capability that fails to install raises :class:`CapabilityFailed` here; one whose
    lifespan fails to start makes the app's start fail with it, kept in
    ``app.state.failed`` for the server to report (strato.capabilities says why)."""
    ctx = context or Context.open(settings)
    owns_context = context is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            # Entered in order and left in reverse, so a later capability may use an earlier one.
            async with AsyncExitStack() as stack:
                for cap in capabilities:
                    try:
                        with starting(cap.name):
                            await stack.enter_async_context(cap.lifespan(app))
                    except CapabilityFailed as failed:
                        app.state.failed = failed
                        raise
                yield
        finally:
            if owns_context:
                ctx.close()

    app = FastAPI(
        title="strato",
        version=__version__,
        summary="Datasets served as Zarr and a federated STAC catalog for science data centres",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.state.failed = None
    # Starlette reports a failed start with the traceback; a capability's failure is
    # reported in its one line instead (per router, so requests pay nothing for it).
    app.router.lifespan = _reported_in_one_line(app, app.router.lifespan)  # type: ignore[method-assign,assignment]
    metrics = Metrics()
    templates = make_templates()
    auth = Authenticator(ctx.identities, settings.auth)
    capabilities = load_capabilities(settings)
    nav: list[NavLink] = [link for cap in capabilities for link in cap.nav()]

    install_error_handlers(app)
    app.mount(
        "/static/apidocs",
        # Swagger UI and ReDoc served from a package, since users' machines may be offline.
        StaticFiles(directory=str(resources.files("fastapi_offline") / "static")),
        name="apidocs",
    )
    app.mount("/static", StaticFiles(packages=[("strato.web", "static")]), name="static")
    app.include_router(make_core_router(ctx, metrics, templates, nav))
    app.include_router(make_identity_router(ctx.identities, auth, settings.auth))
    app.state.templates = templates
    app.state.nav = nav
    for cap in capabilities:
        with starting(cap.name):
            cap.install(app, ctx, auth)
    # Read by /readyz with the core's own checks.
    app.state.readiness = [check for cap in capabilities for check in cap.readiness(app, ctx)]
    # Around the routes and the capabilities' middleware: a database or data directory
    # that cannot serve answers 503 wherever it is met.
    app.add_middleware(StorageFaultMiddleware)
    # After the capabilities: middleware added later wraps what was added before, so
    # these two wrap whatever middleware a capability installs as well.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag", "Content-Length", "X-Request-ID"],
        )
    # Added last so it wraps everything, CORS included.
    # Inside the request context, so a refused body has a request id and a log line.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, access=settings.log.access)
    return app


def _reported_in_one_line(app: FastAPI, run: LifespanHandler) -> LifespanHandler:
    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        async def reported(message: Message) -> None:
            failed = app.state.failed
            if message["type"] == "lifespan.startup.failed" and failed is not None:
                message = {**message, "message": failed.detail}
            await send(message)

        await run(scope, receive, reported)

    return lifespan
