"""Centro's API: ``POST /api/v1/new-run/`` with the config JSON itself as the body and
HTTP Basic authentication (a user with a token, or with a password), and the runs of the
caller (an administrator: every run) on ``/api/v1/runs``.

Every refusal is an RFC 9457 problem with a 4xx status naming the field, so a
``curl --fail`` client sees it (Centro's clients printed "Success!" on a 401)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from strato.auth import Principal, Scope
from strato.errors import InvalidInput
from strato.http.security import Authenticator
from strato.pipelines.api.views import (
    API,
    base_url,
    read_json,
    run_detail,
    run_links,
    run_summary,
    task_view,
)
from strato.pipelines.records import RunState
from strato.pipelines.service import LOG_TAIL_MAX
from strato.pipelines.submissions import Submissions

_NEW_RUN_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "The run's config: `pipeline` (name@version), `project`, and "
                "what the pipeline's schema requires (by default Centro's `email`, "
                "`hpcAccount`, `isilonPath`).",
                "properties": {
                    "pipeline": {"type": "string"},
                    "project": {"type": "string"},
                    "email": {"type": "string"},
                    "hpcAccount": {"type": "string"},
                    "isilonPath": {"type": "string"},
                },
                "required": ["pipeline", "project"],
                "additionalProperties": True,
            }
        }
    },
}


def make_router(submissions: Submissions, auth: Authenticator, public_url: str | None) -> APIRouter:
    router = APIRouter(prefix=API, tags=["Pipelines"])
    runs = submissions.runs
    runner = auth.require(Scope.RUN)
    reader = auth.require(Scope.READ)
    caller_dep = Depends(runner)
    reader_dep = Depends(reader)

    @router.get("/pipelines", summary="The pipelines a run may be submitted of")
    async def pipelines(_: Principal = reader_dep) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        found = await run_in_threadpool(submissions.pipelines)
        return {
            "pipelines": [
                {
                    "name": p.name,
                    "version": p.version,
                    "ref": p.ref,
                    "development": p.is_development,
                }
                for p in found
            ]
        }

    @router.post(
        "/new-run/",
        status_code=201,
        summary="Submit a run (Centro): the body is the config",
        openapi_extra={"requestBody": _NEW_RUN_BODY},
    )
    async def new_run(request: Request, caller: Principal = caller_dep) -> JSONResponse:
        config = await read_json(request, submissions.settings.max_config_bytes)
        if not isinstance(config, dict):
            raise InvalidInput("the body is no JSON object: it is the run's config")
        ref = config.get("pipeline")
        if not isinstance(ref, str) or not ref:
            raise InvalidInput(
                "pipeline: the config names no pipeline (name@version)",
                errors=[{"field": "pipeline", "message": "required, name@version"}],
            )
        run = await submissions.submit(caller, config, ref=ref, centro=True)
        base = base_url(public_url, request)
        urls = run_links(base, run.id)
        body = {"id": run.id, "pipeline": run.pipeline, "state": run.state.value, "urls": urls}
        return JSONResponse(body, status_code=201, headers={"Location": urls["run"]})

    @router.get("/runs", summary="Your runs, newest first (an administrator: every run)")
    async def list_runs(
        request: Request,
        caller: Principal = caller_dep,
        state: Annotated[list[RunState] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        found = await runs.list(caller, states=state or (), limit=limit, after=after)
        base = base_url(public_url, request)
        body: dict[str, Any] = {"runs": [run_summary(r, base) for r in found]}
        if len(found) == limit:
            body["next"] = str(request.url.include_query_params(after=found[-1].id))
        return body

    @router.get("/runs/{run_id}", summary="A run: its state, config and links")
    async def get_run(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        return run_detail(await runs.get(caller, run_id), base_url(public_url, request))

    @router.get("/runs/{run_id}/tasks", summary="A run's tasks in render order")
    async def get_tasks(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        tasks = sorted(await runs.tasks(caller, run_id), key=lambda t: t.position)
        base = base_url(public_url, request)
        return {"tasks": [task_view(t, base) for t in tasks]}

    @router.get(
        "/runs/{run_id}/tasks/{task}/log",
        summary="The end of a task's log (its latest attempt)",
        response_class=PlainTextResponse,
    )
    async def get_log(
        run_id: str,
        task: str,
        caller: Principal = caller_dep,
        tail: Annotated[int, Query(ge=1, le=LOG_TAIL_MAX)] = 64 * 1024,
    ) -> PlainTextResponse:
        return PlainTextResponse(await runs.log(caller, run_id, task, tail=tail))

    @router.post("/runs/{run_id}/cancel", summary="Cancel a run: its running tasks are stopped")
    async def cancel(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        return run_summary(await runs.cancel(caller, run_id), base_url(public_url, request))

    @router.post(
        "/runs/{run_id}/resume",
        summary="Run an ended run again, re-rendered; unchanged completed tasks are kept",
    )
    async def resume(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        run = await submissions.resume(caller, run_id)
        return run_summary(run, base_url(public_url, request))

    @router.post("/runs/{run_id}/retry", summary="Run an ended run's failed tasks again")
    async def retry(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        return run_summary(await runs.retry(caller, run_id), base_url(public_url, request))

    return router
