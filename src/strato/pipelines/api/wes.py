"""GA4GH Workflow Execution Service 1.1 at ``/ga4gh/wes/v1``: a workflow is a pipeline
(``workflow_url`` = ``name@version``, ``workflow_type`` JETSTREAM), a run a pipeline run.

Errors are strato's RFC 9457 problems carrying WES's ErrorResponse fields (``msg``,
``status_code``) as well, so a WES client and a problem-aware one both read them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.responses import Response

from strato.auth import Principal, Scope
from strato.errors import InvalidInput, NotFound, StratoError
from strato.http.problems import domain_problem, status_of
from strato.http.security import Authenticator
from strato.pipelines.api.views import WES, base_url, parse_json, when
from strato.pipelines.records import ENDED, RunRecord, RunState, TaskRecord
from strato.pipelines.store import MAX_LIMIT
from strato.pipelines.submissions import MAX_ATTACHMENT_BYTES, Submissions

WORKFLOW_TYPE = "JETSTREAM"
# Jetstream's template format, major version 1: "1" and any "1.x" are taken.
TYPE_VERSIONS = ("1",)
WES_VERSIONS = ["1.1.0"]
# The WES request's own fields of a run, kept with its config under this key.
REQUEST_KEY = "__wes__"
MAX_TAGS = 64
MAX_TAG = 1024

STATES: Mapping[RunState, str] = {
    RunState.queued: "QUEUED",
    RunState.running: "RUNNING",
    RunState.succeeded: "COMPLETE",
    RunState.failed: "EXECUTOR_ERROR",
    RunState.cancelling: "CANCELING",
    RunState.cancelled: "CANCELED",
}


def wes_state(run: RunRecord) -> str:
    """The run's state in WES's words: a failure not of a task's (archiving, the backend)
    is the system's, not the executor's."""
    if run.state == RunState.failed and not run.reason.startswith("task "):
        return "SYSTEM_ERROR"
    return STATES[run.state]


class WesRoute(APIRoute):
    """Domain errors answered as problems with WES's ErrorResponse fields added."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except StratoError as exc:
                return domain_problem(
                    exc, instance=request.url.path, msg=exc.detail, status_code=status_of(exc)
                )

        return route


_RUN_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "workflow_params": {"type": "string", "description": "The config, JSON."},
                    "workflow_type": {"type": "string", "enum": [WORKFLOW_TYPE]},
                    "workflow_type_version": {"type": "string"},
                    "workflow_url": {"type": "string", "description": "name@version"},
                    "tags": {"type": "string", "description": "JSON object of text"},
                    "workflow_engine_parameters": {"type": "string"},
                    "workflow_attachment": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                    },
                },
                "required": ["workflow_type", "workflow_type_version", "workflow_url"],
            }
        }
    },
}


def make_router(submissions: Submissions, auth: Authenticator, public_url: str | None) -> APIRouter:
    router = APIRouter(prefix=WES, tags=["GA4GH WES"], route_class=WesRoute)
    runs = submissions.runs
    caller_dep = Depends(auth.require(Scope.RUN))
    reader_dep = Depends(auth.require(Scope.READ))

    @router.get("/service-info", summary="What this WES runs: Jetstream-format pipelines")
    async def service_info(request: Request, _: Principal = reader_dep) -> dict[str, Any]:
        counts = await asyncio.to_thread(runs.store.counts)
        wes_counts: dict[str, int] = dict.fromkeys(sorted(set(STATES.values())), 0)
        for state, n in counts.items():
            wes_counts[STATES[state]] += n
        base = base_url(public_url, request)
        return {
            "id": "org.strato.pipelines",
            "name": "strato pipelines",
            "type": {"group": "org.ga4gh", "artifact": "wes", "version": WES_VERSIONS[0]},
            "organization": {"name": "strato", "url": base},
            "version": "1.1.0",
            "workflow_type_versions": {
                WORKFLOW_TYPE: {"workflow_type_version": list(TYPE_VERSIONS)}
            },
            "supported_wes_versions": WES_VERSIONS,
            "supported_filesystem_protocols": ["file"],
            "workflow_engine_versions": {"strato": {"workflow_engine_version": ["1"]}},
            "default_workflow_engine_parameters": [],
            "system_state_counts": wes_counts,
            "auth_instructions_url": f"{base}/docs",
            "tags": {"attachments": str(submissions.settings.wes_attachments).lower()},
        }

    @router.get("/runs", summary="Your runs, newest first (paged)")
    async def list_runs(
        caller: Principal = caller_dep,
        page_size: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        page_token: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        found = await runs.list(caller, limit=page_size, after=page_token or None)
        return {
            "runs": [
                {
                    "run_id": r.id,
                    "state": wes_state(r),
                    "start_time": when(r.started or r.created),
                    "end_time": when(r.finished),
                    "tags": _request(r)["tags"],
                }
                for r in found
            ],
            "next_page_token": found[-1].id if len(found) == page_size else "",
        }

    @router.post(
        "/runs",
        summary="Run a pipeline (multipart form)",
        openapi_extra={"requestBody": _RUN_BODY},
    )
    async def run_workflow(request: Request, caller: Principal = caller_dep) -> dict[str, str]:
        kind = request.headers.get("content-type", "")
        if not kind.startswith("multipart/form-data"):
            raise InvalidInput("a WES run request is a multipart/form-data form")
        limit = submissions.settings.max_config_bytes
        async with request.form(max_files=64, max_fields=64, max_part_size=limit) as form:
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            files = [v for k, v in form.multi_items() if isinstance(v, UploadFile)]
            names = {k for k, v in form.multi_items() if isinstance(v, UploadFile)}
            if names - {"workflow_attachment"}:
                name = sorted(names - {"workflow_attachment"})[0]
                raise InvalidInput(f"{name}: a file where text is expected")
            if files and not submissions.settings.wes_attachments:
                raise InvalidInput(
                    "workflow_attachment: this server takes no attachments (pipelines are "
                    "installed on it; name one with workflow_url)"
                )
            attachments = [(f.filename or "", await _read(f, MAX_ATTACHMENT_BYTES)) for f in files]
        ref, config, kept = _run_request(fields)
        run = await submissions.submit(
            caller,
            config,
            ref=ref,
            field="workflow_url",
            attachments=attachments,
            annotations=kept,
        )
        return {"run_id": run.id}

    @router.get("/runs/{run_id}", summary="A run: its request, state, log and outputs")
    async def run_log(
        request: Request, run_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        run = await runs.get(caller, run_id)
        base = base_url(public_url, request)
        config = {k: v for k, v in run.config.items() if k != REQUEST_KEY}
        outputs: dict[str, Any] = {"project": run.project}
        if "archive" in run.steps:
            outputs["archive"] = run.steps["archive"]
        return {
            "run_id": run.id,
            "request": {"workflow_params": config, **_request(run)},
            "state": wes_state(run),
            "run_log": {
                "name": run.pipeline,
                "cmd": [],
                "start_time": when(run.started),
                "end_time": when(run.finished),
                "stdout": None,
                "stderr": None,
                "exit_code": None,
                "system_logs": [run.reason] if run.reason else [],
            },
            "task_logs_url": f"{base}{WES}/runs/{run.id}/tasks",
            "task_logs": None,
            "outputs": outputs,
        }

    @router.get("/runs/{run_id}/status", summary="A run's state")
    async def run_status(run_id: str, caller: Principal = caller_dep) -> dict[str, str]:
        run = await runs.get(caller, run_id)
        return {"run_id": run.id, "state": wes_state(run)}

    @router.get("/runs/{run_id}/tasks", summary="A run's tasks in render order (paged)")
    async def list_tasks(
        request: Request,
        run_id: str,
        caller: Principal = caller_dep,
        page_size: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        page_token: Annotated[str | None, Query(max_length=20)] = None,
    ) -> dict[str, Any]:
        start = _offset(page_token)
        tasks = sorted(await runs.tasks(caller, run_id), key=lambda t: t.position)
        page = tasks[start : start + page_size]
        base = base_url(public_url, request)
        more = start + page_size < len(tasks)
        return {
            "task_logs": [_task_log(t, base) for t in page],
            "next_page_token": str(start + page_size) if more else "",
        }

    @router.get("/runs/{run_id}/tasks/{task_id}", summary="One task of a run")
    async def get_task(
        request: Request, run_id: str, task_id: str, caller: Principal = caller_dep
    ) -> dict[str, Any]:
        for task in await runs.tasks(caller, run_id):
            if task.name == task_id:
                return _task_log(task, base_url(public_url, request))
        raise NotFound(f"pipeline run {run_id!r} has no task {task_id!r}")

    @router.post("/runs/{run_id}/cancel", summary="Cancel a run")
    async def cancel(run_id: str, caller: Principal = caller_dep) -> dict[str, str]:
        run = await runs.get(caller, run_id)
        if run.state not in ENDED:
            await runs.cancel(caller, run_id)
        return {"run_id": run.id}

    return router


def _run_request(
    fields: Mapping[str, str],
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The pipeline, the config and what is kept of the request that its form names."""
    kind = fields.get("workflow_type")
    if kind is None or kind.upper() != WORKFLOW_TYPE:
        raise InvalidInput(f"workflow_type: {kind!r} is not run here (types: {WORKFLOW_TYPE})")
    version = fields.get("workflow_type_version", "")
    if version.partition(".")[0] not in TYPE_VERSIONS:
        raise InvalidInput(
            f"workflow_type_version: {version!r} is not run here "
            f"(versions: {', '.join(TYPE_VERSIONS)}, 1.x)"
        )
    ref = fields.get("workflow_url", "")
    if not ref:
        raise InvalidInput("workflow_url: the pipeline as name@version is required")
    params = fields.get("workflow_params")
    config = {} if params is None else parse_json(params, "workflow_params")
    if not isinstance(config, dict):
        raise InvalidInput("workflow_params: the config is a JSON object")
    tags = _text_object(fields.get("tags"), "tags")
    engine = _text_object(fields.get("workflow_engine_parameters"), "workflow_engine_parameters")
    if engine:
        raise InvalidInput(
            f"workflow_engine_parameters: {sorted(engine)[0]!r} is not one of this engine's "
            "(it takes none)"
        )
    if REQUEST_KEY in config:
        raise InvalidInput(f"workflow_params.{REQUEST_KEY}: a name this server keeps for itself")
    return ref, config, {REQUEST_KEY: {"workflow_type_version": version, "tags": tags}}


def _text_object(text: str | None, field: str) -> dict[str, str]:
    if text is None or not text.strip():
        return {}
    value = parse_json(text, field)
    if not isinstance(value, dict) or len(value) > MAX_TAGS:
        raise InvalidInput(f"{field}: a JSON object of at most {MAX_TAGS} texts")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > MAX_TAG or len(item) > MAX_TAG:
            raise InvalidInput(f"{field}.{key}: a text of at most {MAX_TAG} characters")
    return value


def _request(run: RunRecord) -> dict[str, Any]:
    kept = run.config.get(REQUEST_KEY)
    kept = kept if isinstance(kept, dict) else {}
    return {
        "workflow_type": WORKFLOW_TYPE,
        "workflow_type_version": kept.get("workflow_type_version", TYPE_VERSIONS[0]),
        "workflow_url": run.pipeline,
        "tags": kept.get("tags", {}),
        "workflow_engine_parameters": {},
    }


def _task_log(task: TaskRecord, base: str) -> dict[str, Any]:
    log = f"{base}/api/v1/runs/{task.run_id}/tasks/{task.name}/log"
    system = [f"state: {task.state.value}", f"attempts: {task.attempts}"]
    if task.reason:
        system.append(task.reason)
    return {
        "id": task.name,
        "name": task.name,
        "cmd": [] if task.spec.cmd is None else ["bash", "-c", task.spec.cmd],
        "start_time": when(task.started),
        "end_time": when(task.finished),
        "stdout": log,
        "stderr": log,
        "exit_code": task.exit_code,
        "system_logs": system,
    }


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidInput(f"page_token: {token!r} is no token this server gave")
    return int(token)


async def _read(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"workflow_attachment: {upload.filename!r} is over {limit} bytes")
    return data
