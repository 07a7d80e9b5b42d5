"""Landing page, health, readiness, metrics and the self-hosted API docs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from strato import __version__, db
from strato.capabilities import NavLink, ReadinessCheck
from strato.context import Context, data_dir_problem
from strato.errors import Unavailable
from strato.http.metrics import Metrics
from strato.http.problems import domain_problem


def make_core_router(
    ctx: Context, metrics: Metrics, templates: Jinja2Templates, nav: list[NavLink]
) -> APIRouter:
    router = APIRouter()
    # The newest revision is a property of the installed code, not of the database.
    head = ctx.schema_head()

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
        summary="Readiness: what each capability needs is there",
        description="Checks the database (reachable, migrated, writable), the data directory "
        "(writable) and what each capability needs (the catalog's event bus). Answers 503 "
        "with every check and what is wrong with those that fail.",
        responses={503: {"description": "A dependency is not ready; `checks` says which"}},
    )
    async def readyz(request: Request) -> Response:
        checks = [*core_checks(ctx, head), *getattr(request.app.state, "readiness", [])]
        reasons = await asyncio.gather(*(_probe(check) for check in checks))
        report = {
            check.name: {"status": "ok"}
            if reason is None
            else {"status": "failing", "detail": reason}
            for check, reason in zip(checks, reasons, strict=True)
        }
        failing = [reason for reason in reasons if reason is not None]
        if failing:
            error = Unavailable("not ready: " + "; ".join(failing))
            return domain_problem(error, instance=request.url.path, checks=report)
        return JSONResponse({"status": "ready", "database": "ok", "schema": head, "checks": report})

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


# A probe that has not answered by then counts as failing: load balancers give up on
# a readiness request after a few seconds, and a hung dependency is not ready.
PROBE_TIMEOUT = 5.0


def _entry(reason: str | None) -> dict[str, str]:
    return {"status": "ok"} if reason is None else {"status": "failing", "detail": reason}


async def _probe(check: ReadinessCheck) -> str | None:
    try:
        return await asyncio.wait_for(check.probe(), PROBE_TIMEOUT)
    except TimeoutError:
        return f"{check.name}: no answer within {PROBE_TIMEOUT:.0f} s"
    except Exception as exc:  # a probe that fails says the dependency is not there
        return f"{check.name}: {type(exc).__name__}"


def core_checks(ctx: Context, head: str | None) -> list[ReadinessCheck]:
    """What every node needs: its database reachable, migrated and writable, and its
    data directory writable."""

    async def database() -> str | None:
        try:
            current = await asyncio.to_thread(ctx.schema)
        except Exception as exc:
            return f"database not reachable ({type(exc).__name__})"
        if current != head:
            return (
                f"database schema is at {current or 'nothing'}, expected {head}: "
                "run `strato db upgrade`"
            )
        return None

    async def database_writable() -> str | None:
        try:
            return await asyncio.to_thread(db.read_only_problem, ctx.engine)
        except Exception as exc:
            return f"database not reachable ({type(exc).__name__})"

    async def data_dir() -> str | None:
        return await asyncio.to_thread(data_dir_problem, ctx.settings.data_dir)

    return [
        ReadinessCheck("database", database),
        ReadinessCheck("database-writable", database_writable),
        ReadinessCheck("data-dir", data_dir),
    ]
