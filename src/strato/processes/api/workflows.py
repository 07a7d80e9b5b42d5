"""Workflows over OGC API - Processes: an execute request of the ``workflow`` process (the
explicit form) or of any process whose inputs call others (Part 3 nested processes) is run
by the coordinator as one job, whose status lists its steps."""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from strato.auth import Principal
from strato.job_engine import JobRecord, JobStatus
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchJob, job_failure
from strato.processes.model.execute import prefers_async
from strato.processes.model.status import results_document, status_info
from strato.processes.service import ProcessService
from strato.processes.workflows.coordinator import Workflows
from strato.processes.workflows.plan import WORKFLOW, Plan, explicit_plan, has_nested, nested_plan


def describer(service: ProcessService) -> Any:
    def describe(process_id: str) -> ProcessDescription:
        return service.process(process_id).description

    return describe


def plan_of(service: ProcessService, process_id: str, inputs: dict[str, Any]) -> Plan | None:
    """The workflow an execute request asks for; None for a plain execution."""
    if process_id == WORKFLOW:
        return explicit_plan(inputs, describer(service))
    if has_nested(inputs):
        return nested_plan(process_id, inputs, describer(service))
    return None


def workflow_status(job: JobRecord, api: str, workflows: Workflows) -> dict[str, Any]:
    """statusInfo, with each step of a workflow this server runs (or ran) and the
    progress of the whole aggregated from theirs."""
    info = status_info(job, api)
    if job.process_id != WORKFLOW:
        return info
    steps = workflows.steps(job.id)
    if steps is None:
        return info
    info["steps"] = steps
    if job.status is JobStatus.running and steps:
        done = [100 if s["status"] == JobStatus.successful else s["progress"] for s in steps]
        info["progress"] = min(99, sum(done) // len(done))
    return info


async def execute(
    workflows: Workflows,
    plan: Plan,
    who: Principal,
    api: str,
    prefer: str | None,
    sync_wait: float,
) -> Response:
    job = await workflows.start(plan, who)
    headers = {"Location": f"{api}/jobs/{job.id}"}
    if prefers_async(prefer):
        # The steps' status is read from the database: not on the event loop.
        return JSONResponse(
            await run_in_threadpool(workflow_status, job, api, workflows),
            status_code=201,
            headers={**headers, "Preference-Applied": "respond-async"},
        )
    done = await workflows.jobs.wait(job.id, timeout=sync_wait)
    if not done.done:
        info = await run_in_threadpool(workflow_status, done, api, workflows)
        return JSONResponse(info, status_code=201, headers=headers)
    if done.status is JobStatus.failed:
        raise job_failure(done.id, done.error)
    if done.status is JobStatus.dismissed:
        raise NoSuchJob(f"job {done.id!r} was dismissed while it ran")
    return JSONResponse(
        results_document(done, api), headers={"Link": f'<{api}/jobs/{done.id}>; rel="monitor"'}
    )
