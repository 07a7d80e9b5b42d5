"""The pipelines' web pages: the pipelines and their versions, one pipeline's config
fields, a submission page (a JSON editor checked against the pipeline's schema as one
types, a form generated from the schema, a sample sheet filling ``dataFiles``), the runs
with their states, and a run's page (its task graph, its tasks' states, a task's log
tail, cancel, resume and retry).

The pages are drawn on the server and readable without JavaScript; their script
(``/static/pipelines.js``) makes them live by polling the runs API and submits through
``POST /api/v1/new-run/``, so a run from a page passes Centro's checks and nothing else.
They authenticate as the rest of the API does: the browser's Basic or Authorization
header goes with the page and with its script's same-origin fetches.

Runs are under ``/pipeline-runs``, not ``/pipelines/runs``: any pipeline may be named
``runs``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from strato import __version__
from strato.auth import Principal, Scope
from strato.capabilities import NavLink
from strato.errors import InvalidInput, NotFound, PayloadTooLarge
from strato.http.security import Authenticator
from strato.pipelines.api.views import API, base_url, run_detail, task_view
from strato.pipelines.model.errors import PipelineNotFound
from strato.pipelines.model.pipeline import Pipeline, select
from strato.pipelines.records import ACTIVE
from strato.pipelines.submissions import CENTRO_SCHEMA, Submissions
from strato.pipelines.web.graph import layout
from strato.pipelines.web.sheets import MAX_UPLOAD, read_xlsx
from strato.settings import Settings

PAGES = "/pipelines"
RUNS = "/pipeline-runs"
RUNS_SHOWN = 100


class _Pages:
    def __init__(self, templates: Jinja2Templates, nav: list[NavLink], settings: Settings) -> None:
        self.templates = templates
        self.nav = nav
        self.settings = settings

    def render(self, request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
        base = base_url(self.settings.public_url, request)
        return self.templates.TemplateResponse(
            request,
            f"pipelines/{name}",
            {
                "nav": self.nav,
                "settings": self.settings,
                "version": __version__,
                "base": base,
                "api": base + API,
                "pages": base + PAGES,
                "runs_page": base + RUNS,
                **context,
            },
        )


def make_router(
    submissions: Submissions,
    auth: Authenticator,
    templates: Jinja2Templates,
    nav: list[NavLink],
    settings: Settings,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    pages = _Pages(templates, nav, settings)
    runs = submissions.runs
    reader = Depends(auth.require(Scope.READ))
    runner = Depends(auth.require(Scope.RUN))

    @router.get(PAGES)
    async def pipelines_page(request: Request, _: Principal = reader) -> HTMLResponse:
        found = await run_in_threadpool(submissions.pipelines)
        named: dict[str, list[Pipeline]] = {}
        for pipeline in found:
            named.setdefault(pipeline.name, []).append(pipeline)
        return pages.render(request, "pipelines.html", {"named": sorted(named.items())})

    def _versions(name: str, version: str | None) -> tuple[Pipeline, list[Pipeline]]:
        found = submissions.pipelines()
        same = [p for p in found if p.name == name]
        if not same:
            raise NotFound(f"no pipeline named {name!r}")
        try:
            chosen = select(same, f"{name}@{version}" if version else name)
        except PipelineNotFound as exc:
            if version:
                raise NotFound(exc.detail) from None
            chosen = same[0]  # only development versions: show the first
        return chosen, same

    def _described(name: str, version: str | None) -> dict[str, Any]:
        pipeline, versions = _versions(name, version)
        own = pipeline.schema()
        schema = own if own is not None else CENTRO_SCHEMA
        return {
            "pipeline": pipeline,
            "versions": versions,
            "own_schema": own is not None,
            "schema": schema,
            "fields": fields(schema),
            "defaults": {k: v for k, v in pipeline.manifest.items() if k != "__pipeline__"},
        }

    @router.get(PAGES + "/{name}")
    async def pipeline_page(
        request: Request, name: str, version: str | None = None, _: Principal = reader
    ) -> HTMLResponse:
        described = await run_in_threadpool(_described, name, version)
        return pages.render(request, "pipeline.html", described)

    @router.get(PAGES + "/{name}/submit")
    async def submit_page(
        request: Request, name: str, version: str | None = None, _: Principal = reader
    ) -> HTMLResponse:
        described = await run_in_threadpool(_described, name, version)
        pipeline: Pipeline = described["pipeline"]
        described["initial"] = json.dumps(
            starting_config(pipeline.ref, described["schema"]), indent=2
        )
        return pages.render(request, "submit.html", described)

    @router.post(PAGES + "/sheet")
    async def sheet(request: Request, _: Principal = runner) -> JSONResponse:
        """An uploaded .xlsx (the request's body) as rows: ``{"columns", "rows"}``."""
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_UPLOAD:
                raise PayloadTooLarge(f"sheet: larger than {MAX_UPLOAD >> 20} MiB")
        if not data:
            raise InvalidInput("sheet: the upload is empty")
        return JSONResponse(await run_in_threadpool(read_xlsx, bytes(data)))

    @router.get(RUNS)
    async def runs_page(request: Request, caller: Principal = runner) -> HTMLResponse:
        found = await runs.list(caller, limit=RUNS_SHOWN)
        return pages.render(
            request,
            "runs.html",
            {"runs": found, "active": any(r.state in ACTIVE for r in found), "limit": RUNS_SHOWN},
        )

    @router.get(RUNS + "/{run_id}")
    async def run_page(request: Request, run_id: str, caller: Principal = runner) -> HTMLResponse:
        run = await runs.get(caller, run_id)
        tasks = sorted(await runs.tasks(caller, run_id), key=lambda t: t.position)
        base = base_url(settings.public_url, request)
        drawn = layout([t.name for t in tasks], {t.name: sorted(t.parents) for t in tasks})
        return pages.render(
            request,
            "run.html",
            {
                "run": run_detail(run, base),
                "active": run.state in ACTIVE,
                "tasks": [task_view(t, base) for t in tasks],
                "states": {t.name: t.state.value for t in tasks},
                "graph": drawn,
            },
        )

    return router


def fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The schema's top-level properties as the pages list them and the form draws them:
    name, type, whether required, enum, default, description; a field the form can hold
    in one input (text, number, yes/no, a choice) is ``simple``."""
    properties = schema.get("properties")
    required = schema.get("required")
    needed = set(required) if isinstance(required, list) else set()
    if not isinstance(properties, Mapping):
        properties = {}
    listed = []
    for name, prop in properties.items():
        prop = prop if isinstance(prop, Mapping) else {}
        kind = prop.get("type")
        kind = kind if isinstance(kind, str) else ""
        enum = prop.get("enum") if isinstance(prop.get("enum"), list) else None
        listed.append(
            {
                "name": str(name),
                "type": kind or ("enum" if enum else "any"),
                "required": name in needed,
                "enum": enum,
                "default": prop.get("default"),
                "description": str(prop.get("description") or prop.get("title") or ""),
                "simple": kind in ("string", "number", "integer", "boolean") or enum is not None,
            }
        )
    # Required fields named but not described among the properties are fields too.
    for name in sorted(needed - set(properties)):
        listed.append(
            {
                "name": str(name),
                "type": "any",
                "required": True,
                "enum": None,
                "default": None,
                "description": "",
                "simple": False,
            }
        )
    return listed


def starting_config(ref: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """What the editor starts with: the pipeline, and each required field empty (or its
    default)."""
    config: dict[str, Any] = {"pipeline": ref}
    for field in fields(schema):
        name = field["name"]
        if name in config:
            continue
        if field["default"] is not None:
            config[name] = field["default"]
        elif field["required"]:
            config[name] = _empty(field["type"])
    config.setdefault("project", "")
    return config


def _empty(kind: str) -> Any:
    return {"array": [], "object": {}, "boolean": False}.get(kind, "")
