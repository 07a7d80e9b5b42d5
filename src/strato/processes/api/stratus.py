"""The Stratus Request Specification door, for clients of NASA NCCS's Stratus:
``POST /stratus/exe`` takes a Stratus request (:mod:`strato.processes.workflows.stratus`)
and runs it as the same workflow an OGC execute request would, ``GET /stratus/status``
and ``/stratus/result`` follow it by its ``rid`` (the workflow's job id, also listed under
``/processes-api/jobs``), and ``/stratus/capabilities?type=epas`` names the operations.

Results are NetCDF files, never pickles. The same scope as executing (``process``), the
same rule for whose jobs one sees (one's own; an administrator every one).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from strato.auth import Principal, Scope
from strato.errors import InvalidInput, NotFound
from strato.http.security import Authenticator
from strato.job_engine import JobStatus
from strato.processes.api.urls import api_url as processes_api_url
from strato.processes.api.workflows import describer, workflow_status
from strato.processes.model.errors import NoSuchJob
from strato.processes.service import ProcessService
from strato.processes.workflows.coordinator import Workflows
from strato.processes.workflows.plan import WORKFLOW
from strato.processes.workflows.stratus import EPA, OPERATIONS, epas, parse_request, translate
from strato.settings import Settings

PREFIX = "/stratus"
# Stratus's status words.
STATUS = {
    JobStatus.accepted: "queued",
    JobStatus.running: "executing",
    JobStatus.successful: "completed",
    JobStatus.failed: "error",
    JobStatus.dismissed: "canceled",
}
NETCDF = "application/x-netcdf"
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "A Stratus request: operation, domain and input lists.",
                "properties": {
                    "operation": {"type": "array", "items": {"type": "object"}},
                    "domain": {"type": "array", "items": {"type": "object"}},
                    "input": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
_RID = Query(..., min_length=1, max_length=200, description="The request id /exe returned")


def make_router(
    service: ProcessService, workflows: Workflows, auth: Authenticator, settings: Settings
) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["stratus"])
    read = Depends(auth.require(Scope.READ))
    process = Depends(auth.require(Scope.PROCESS))

    def api_url(request: Request) -> str:
        return processes_api_url(settings.public_url, request)

    def status_of(rid: str, who: Principal, request: Request) -> dict[str, Any]:
        job = service.job(rid, who)
        if job.process_id != WORKFLOW:
            raise NoSuchJob(f"no Stratus request {rid!r}")
        info = workflow_status(job, api_url(request), workflows)
        out: dict[str, Any] = {
            "rid": rid,
            "status": STATUS[job.status],
            "statusCode": job.status.value,
            "progress": info.get("progress", job.progress),
            "message": info.get("message", ""),
            "monitor": f"{api_url(request)}/jobs/{rid}",
        }
        if "steps" in info:
            out["steps"] = info["steps"]
        if job.status is JobStatus.successful:
            out["outputs"] = sorted(job.results or {})
        return out

    @router.post(
        "/exe",
        summary="Run a Stratus request (operation, domain, input lists)",
        description='The body is a Stratus request, or one wrapped as `{"request": ...}`; '
        "what is wrong with one answers 400 naming where it is.",
        openapi_extra={"requestBody": REQUEST_BODY},
        status_code=201,
    )
    async def exe(request: Request, who: Principal = process) -> Response:
        # Read and bounded here rather than by FastAPI's body parsing: every malformed
        # request, JSON that is none included, answers 400 saying what is wrong with it.
        # Parsed and walked in the thread pool: a body may be max_body_bytes of JSON.
        spec = await run_in_threadpool(parse_request, await request.body())
        plan = await run_in_threadpool(translate, spec, describer(service))
        job = await workflows.start(plan, who)
        # Read from the database: not on the event loop.
        info = await run_in_threadpool(status_of, job.id, who, request)
        return JSONResponse(info, status_code=201)

    @router.get("/status", summary="The status of a Stratus request")
    def status(request: Request, rid: str = _RID, who: Principal = process) -> Response:
        return JSONResponse(status_of(rid, who, request))

    @router.get(
        "/result",
        summary="A Stratus request's result as NetCDF",
        description="With several outputs, `output` names one.",
        responses={200: {"content": {NETCDF: {}}}},
    )
    def result(
        rid: str = _RID,
        output: str | None = Query(None, max_length=100),
        who: Principal = process,
    ) -> Response:
        job = service.finished_results(rid, who)
        if job.process_id != WORKFLOW:
            raise NoSuchJob(f"no Stratus request {rid!r}")
        names = sorted(job.results or {})
        if output is None:
            if len(names) != 1:
                raise InvalidInput(
                    f"request {rid!r} has several outputs; name one: output={' or '.join(names)}"
                )
            output = names[0]
        if output not in names:
            raise NotFound(f"request {rid!r} has no output {output!r} (its outputs: {names})")
        path = workflows.output_file(job, output)
        value = (job.results or {})[output]
        if path is None and not _is_file(value):
            # A value (hello-world's text) rather than a file: itself, as JSON.
            return JSONResponse({"rid": rid, "output": output, "value": value})
        if path is None or path.suffix != ".nc":
            raise NotFound(f"output {output!r} of request {rid!r} is not a NetCDF file")
        return FileResponse(path, media_type=NETCDF, filename=f"{rid}-{output}.nc")

    @router.get("/capabilities", summary="What this node offers, as Stratus names it")
    def capabilities(
        type: str = Query("epas", pattern="^(epas|processes|capabilities)$"),
        _: Principal = read,
    ) -> Response:
        ids = [r.id for r in service.registry.all() if r.id != WORKFLOW]
        if type == "epas":
            return JSONResponse({"epas": epas(ids)})
        mapped = {
            f"{EPA}:{op}": {"process": pid, "inputs": fixed}
            for op, (pid, fixed) in OPERATIONS.items()
            if pid in ids
        }
        return JSONResponse({"epas": epas(ids), "operations": mapped, "processes": ids})

    return router


def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and "href" in value
