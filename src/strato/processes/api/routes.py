"""OGC API - Processes Part 1 Core 1.0, under ``/processes-api`` (its landing page; the
standard's ``/conformance``, ``/processes`` and ``/jobs`` below it). Execution needs the
``process`` scope; each user sees and dismisses only their own jobs (an administrator
every job)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from strato.auth import Principal, Scope
from strato.errors import Forbidden, InvalidInput
from strato.http.security import Authenticator
from strato.job_engine import JobRecord, JobStatus
from strato.jsonio import dumps
from strato.processes.api.files import result_file
from strato.processes.api.models import ExecuteIn
from strato.processes.api.urls import PREFIX
from strato.processes.api.urls import api_url as api_url_of
from strato.processes.api.workflows import execute as execute_workflow
from strato.processes.api.workflows import plan_of, workflow_status
from strato.processes.callbacks import Callbacks
from strato.processes.model.description import DISMISS, ProcessDescription
from strato.processes.model.errors import NoSuchJob, job_failure
from strato.processes.model.execute import (
    Mode,
    Subscriber,
    mode_of,
    preferred_wait,
    requested_outputs,
)
from strato.processes.model.interval import parse_interval
from strato.processes.model.status import (
    JSON,
    REL_JOB_LIST,
    REL_PROCESSES,
    file_href,
    results_document,
    status_info,
)
from strato.processes.service import JobQuery, ProcessService, results_of
from strato.processes.settings import ProcessesSettings
from strato.processes.web.pages import Pages, wants_html
from strato.processes.workflows.coordinator import Workflows
from strato.processes.workflows.plan import WORKFLOW, Plan, has_nested
from strato.settings import Settings

CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
CONFORMANCE = tuple(
    CONF + name
    for name in (
        "core",
        "ogc-process-description",
        "json",
        "html",
        "oas30",
        "job-list",
        "dismiss",
        "callback",
    )
)
TAGS: list[str | Any] = ["processes"]
Format = Query(None, pattern="^(json|html)$", description="json (the default) or html")


def make_router(
    service: ProcessService,
    callbacks: Callbacks,
    pages: Pages,
    auth: Authenticator,
    settings: Settings,
    workflows: Workflows | None = None,
) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=TAGS)
    flows = workflows or Workflows(service)
    options = ProcessesSettings.of(settings)
    read = Depends(auth.require(Scope.READ))
    process = Depends(auth.require(Scope.PROCESS))

    def api_url(request: Request) -> str:
        return api_url_of(settings.public_url, request)

    def link(href: str, rel: str, title: str, type_: str = JSON) -> dict[str, str]:
        return {"href": href, "rel": rel, "type": type_, "title": title}

    @router.get("", summary="Landing page of the OGC API - Processes")
    def landing(request: Request, f: str | None = Format, _: Principal = read) -> Response:
        api = api_url(request)
        root = api.removesuffix(PREFIX)
        body = {
            "title": f"strato processes on {settings.node_name}",
            "description": "OGC API - Processes: analytic operations run as jobs.",
            "links": [
                link(api, "self", "This document"),
                link(f"{api}?f=html", "alternate", "This document as HTML", "text/html"),
                link(
                    f"{root}/openapi.json",
                    "service-desc",
                    "The API definition",
                    "application/vnd.oai.openapi+json;version=3.0",
                ),
                link(f"{root}/docs", "service-doc", "The API documentation", "text/html"),
                link(
                    f"{api}/conformance",
                    "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                    "Conformance classes",
                ),
                link(f"{api}/processes", REL_PROCESSES, "The processes"),
                link(f"{api}/jobs", REL_JOB_LIST, "The jobs"),
            ],
        }
        return pages.answer(request, f, "landing.html", body, api=api)

    # OWSLib and others join paths to the landing page's URL with a slash.
    router.add_api_route("/", landing, methods=["GET"], include_in_schema=False)

    @router.get("/conformance", summary="Conformance classes")
    def conformance(request: Request, f: str | None = Format, _: Principal = read) -> Response:
        body = {"conformsTo": list(CONFORMANCE)}
        return pages.answer(request, f, "conformance.html", body)

    @router.get("/processes", summary="The processes offered")
    def processes(request: Request, f: str | None = Format, _: Principal = read) -> Response:
        api = api_url(request)
        summaries = []
        for registered in service.registry.all():
            href = f"{api}/processes/{registered.id}"
            summary = registered.description.summary()
            summary["links"] = [
                link(href, "self", "Its description"),
                link(f"{href}?f=html", "alternate", "Its description as HTML", "text/html"),
            ]
            summaries.append(summary)
        body = {
            "processes": summaries,
            "links": [
                link(f"{api}/processes", "self", "This document"),
                link(f"{api}/processes?f=html", "alternate", "This document as HTML", "text/html"),
            ],
        }
        return pages.answer(request, f, "processes.html", body, api=api)

    @router.get("/processes/{processID}", summary="A process's description")
    def describe(
        processID: str,
        request: Request,
        f: str | None = Format,
        _: Principal = read,
    ) -> Response:
        api = api_url(request)
        registered = service.process(processID)
        href = f"{api}/processes/{processID}"
        body = registered.description.to_json()
        body["links"] = [
            link(href, "self", "This document"),
            link(f"{href}?f=html", "alternate", "This document as HTML", "text/html"),
            link(
                f"{href}/execution", "http://www.opengis.net/def/rel/ogc/1.0/execute", "Execute it"
            ),
            link(f"{api}/jobs?processID={processID}", REL_JOB_LIST, "Its jobs"),
        ]
        return pages.answer(request, f, "process.html", body, api=api)

    @router.post(
        "/processes/{processID}/execution",
        summary="Execute a process",
        description="Synchronous (200 with the results) unless the request has "
        "`Prefer: respond-async` (201, `Location` of the job, its statusInfo).",
        responses={201: {"description": "The job was created; `Location` names it"}},
    )
    async def execute(
        processID: str,
        body: ExecuteIn,
        request: Request,
        prefer: str | None = Header(None, max_length=1024),
        who: Principal = process,
    ) -> Response:
        api = api_url(request)

        def terms(description: ProcessDescription) -> tuple[dict[str, str], Subscriber | None]:
            """The outputs and the subscriber the request asks for."""
            outputs = requested_outputs(
                description,
                {k: v.model_dump() for k, v in body.outputs.items()} if body.outputs else None,
            )
            subscriber = None
            if body.subscriber is not None:
                subscriber = Subscriber(
                    body.subscriber.successUri,
                    body.subscriber.inProgressUri,
                    body.subscriber.failedUri,
                )
                if subscriber.uris() and not options.callbacks:
                    raise InvalidInput("subscriber callbacks are switched off on this node")
            return outputs, subscriber

        def submit() -> Plan | tuple[JobRecord, dict[str, str], Subscriber | None, Mode]:
            # One hop to a thread for all of it: a remote process is described by its
            # provider (HTTP or ZeroMQ when not cached) and a workflow's steps may be.
            plan = plan_of(service, processID, body.inputs)
            if plan is not None:  # a workflow (explicit, or inputs calling others): one job
                return plan
            description = service.process(processID).description
            outputs, subscriber = terms(description)
            mode = mode_of(description, prefer)
            return service.submit(processID, body.inputs, who), outputs, subscriber, mode

        # A process this node runs itself needs no thread: its description is here and
        # the engine's write of the job is awaited on the loop.
        local = None
        if processID != WORKFLOW and not has_nested(body.inputs):
            local = service.registry.local(processID)
        if local is not None and local.route is None:
            outputs, subscriber = terms(local.description)
            mode = mode_of(local.description, prefer)
            job = await service.submit_async(local, body.inputs, who)
        else:
            submitted = await run_in_threadpool(submit)
            if isinstance(submitted, Plan):
                return await execute_workflow(
                    flows, submitted, who, api, prefer, options.sync_wait_seconds
                )
            job, outputs, subscriber, mode = submitted
        if subscriber is not None and subscriber.uris():
            callbacks.watch(
                job,
                subscriber,
                lambda j: status_info(j, api),
                lambda j: results_document(j, api, outputs),
            )
        if mode == "async":
            return _created(job, api, {"Preference-Applied": "respond-async"})
        done = await service.wait(job, options.sync_wait_seconds)
        if not done.done:
            # Longer than a synchronous answer waits: it carries on as a job.
            return _created(done, api, {})
        if done.status is JobStatus.failed:
            raise job_failure(done.id, done.error)
        if done.status is JobStatus.dismissed:
            raise NoSuchJob(f"job {done.id!r} was dismissed while it ran")
        document = results_document(done, api, outputs)
        headers = {"Link": f'<{api}/jobs/{done.id}>; rel="monitor"'}
        if body.response == "raw" and len(document) == 1:
            return _raw(next(iter(document.values())), headers)
        return JSONResponse(document, headers=headers)

    @router.get("/jobs", summary="Your jobs (an administrator's: every job)")
    def jobs(
        request: Request,
        processID: list[str] = Query(default_factory=list, max_length=50),
        status: list[JobStatus] = Query(default_factory=list),
        datetime: str | None = Query(None, max_length=100),
        limit: int | None = Query(None, ge=1),
        after: str | None = Query(None, max_length=200, description="Paging: from the next link"),
        f: str | None = Format,
        who: Principal = process,
    ) -> Response:
        api = api_url(request)
        size = min(limit or options.page_limit, options.max_page_limit)
        since, until = parse_interval(datetime) if datetime else (None, None)
        query = JobQuery(processID, status, since, until, size + 1, after)
        found = service.list_jobs(who, query)
        page, more = found[:size], len(found) > size
        links = [link(str(request.url), "self", "This page")]
        if more and page:
            kept = [
                (k, v) for k, v in request.query_params.multi_items() if k not in ("after", "limit")
            ]
            following = urlencode([*kept, ("limit", str(size)), ("after", page[-1].id)])
            links.append(link(f"{api}/jobs?{following}", "next", "The next page"))
        body = {"jobs": [workflow_status(job, api, flows) for job in page], "links": links}
        return pages.answer(request, f, "jobs.html", body, api=api)

    # The two requests a client makes after each job: answered on the event loop when
    # the engine holds the job in memory (running, or finished lately), which it does
    # for the jobs being followed; else in a thread, as the database is blocking.

    @router.get(
        "/jobs/{jobID}",
        summary="A job's status",
        description="With `Prefer: wait=N` (RFC 7240), an unfinished job's status is "
        "answered when the job finishes, or after N seconds (at most the node's "
        "`processes.status_wait_seconds`): a client hears of the end without polling. "
        "`Preference-Applied` says when the wait was honoured.",
    )
    async def job_status(
        jobID: str,
        request: Request,
        f: str | None = Format,
        prefer: str | None = Header(None, max_length=1024),
        who: Principal = process,
    ) -> Response:
        api = api_url(request)
        job = service.job_in_memory(jobID, who)
        headers = {}
        wait = min(preferred_wait(prefer) or 0, options.status_wait_seconds)
        if wait > 0:
            if job is None:
                job = await run_in_threadpool(service.job, jobID, who)
            if not job.done:
                job = await service.wait(job, wait)
            headers["Preference-Applied"] = f"wait={wait:g}"
        if job is not None and job.process_id != WORKFLOW and not wants_html(request, f):
            return JSONResponse(status_info(job, api), headers=headers)
        # A workflow's steps may be read from the database; pages are rendered there too.
        answer = await run_in_threadpool(job_page, jobID, request, f, who)
        answer.headers.update(headers)
        return answer

    def job_page(jobID: str, request: Request, f: str | None, who: Principal) -> Response:
        api = api_url(request)
        body = workflow_status(service.job(jobID, who), api, flows)
        return pages.answer(request, f, "job.html", body, api=api)

    @router.get("/jobs/{jobID}/results", summary="A job's results")
    async def job_results(
        jobID: str,
        request: Request,
        who: Principal = process,
    ) -> Response:
        api = api_url(request)
        held = service.job_in_memory(jobID, who)
        if held is not None:
            job = results_of(held)
        else:
            job = await run_in_threadpool(service.finished_results, jobID, who)
        return JSONResponse(
            results_document(job, api), headers={"Link": f'<{api}/jobs/{job.id}>; rel="up"'}
        )

    def job_output(
        jobID: str,
        outputID: str,
        who: Principal = process,
    ) -> Response:
        job = service.finished_results(jobID, who)
        results = job.results or {}
        if outputID not in results:
            raise NoSuchJob(f"job {jobID!r} has no output {outputID!r}")
        if file_href(results[outputID]) is not None:
            return result_file(service.jobs.result_root, job, outputID)
        return _raw(results[outputID], {})

    def job_output_key(
        jobID: str,
        outputID: str,
        key: str,
        who: Principal = process,
    ) -> Response:
        job = service.finished_results(jobID, who)
        if outputID not in (job.results or {}):
            raise NoSuchJob(f"job {jobID!r} has no output {outputID!r}")
        return result_file(service.jobs.result_root, job, outputID, key)

    # GET and HEAD (clients reading byte ranges ask the size first), each its own
    # operation in the OpenAPI document.
    for method in ("GET", "HEAD"):
        router.add_api_route(
            "/jobs/{jobID}/results/{outputID}",
            job_output,
            methods=[method],
            operation_id=f"job_output_{method.lower()}",
            summary="One output of a job: its value, or the result file (byte ranges)",
        )
        router.add_api_route(
            "/jobs/{jobID}/results/{outputID}/{key:path}",
            job_output_key,
            methods=[method],
            operation_id=f"job_output_key_{method.lower()}",
            summary="A key of a Zarr result store",
        )

    @router.delete("/jobs/{jobID}", summary="Dismiss a job: cancel it if it runs, remove it")
    def dismiss(
        jobID: str,
        request: Request,
        who: Principal = process,
    ) -> Response:
        job = service.job(jobID, who)
        known = {r.id: r for r in service.registry.all()}.get(job.process_id)
        if known is not None and not known.description.allows(DISMISS):
            raise Forbidden(f"jobs of process {job.process_id!r} cannot be dismissed")
        return JSONResponse(status_info(service.dismiss(jobID, who), api_url(request)))

    return router


def _created(job: JobRecord, api: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse(
        status_info(job, api),
        status_code=201,
        headers={"Location": f"{api}/jobs/{job.id}", **headers},
    )


def _raw(value: Any, headers: dict[str, str]) -> Response:
    """One output as itself: text as text/plain, anything else as JSON."""
    if isinstance(value, str):
        return PlainTextResponse(value, headers=headers)
    return Response(dumps(value), media_type=JSON, headers=headers)
