"""Landing page, health, readiness, metrics and the self-hosted API docs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from strato import __version__, db
from strato.capabilities import NavLink
from strato.context import Context
from strato.errors import Unavailable
from strato.http.metrics import Metrics


def make_core_router(
    ctx: Context, metrics: Metrics, templates: Jinja2Templates, nav: list[NavLink]
) -> APIRouter:
    router = APIRouter()
    # The newest revision is a property of the installed code, not of the database.
    head = db.head_revision(ctx.engine)

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing(request: Request) -> Response:
        return templates.TemplateResponse(
            request,
            "index.html",
            {"nav": nav, "settings": ctx.settings, "version": __version__},
        )

    @router.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @router.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the database is reachable and migrated",
        responses={503: {"description": "A dependency is not ready"}},
    )
    async def readyz() -> JSONResponse:
        try:
            current = await asyncio.to_thread(db.current_revision, ctx.engine)
        except Exception as exc:
            raise Unavailable(f"database not reachable: {type(exc).__name__}") from None
        if current != head:
            raise Unavailable(
                f"database schema is at {current or 'nothing'}, expected {head}: "
                "run `strato db upgrade`"
            )
        return JSONResponse({"status": "ready", "database": "ok", "schema": current})

    @router.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @router.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="strato API",
            swagger_js_url=f"{root}/static/apidocs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/apidocs/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/strato.svg",
        )

    @router.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title="strato API",
            redoc_js_url=f"{root}/static/apidocs/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/strato.svg",
            with_google_fonts=False,
        )

    return router
