"""Status and results documents of a job (OGC API - Processes statusInfo.yaml,
results.yaml), with the links the standard names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strato.job_engine import JobRecord, JobStatus

REL = "http://www.opengis.net/def/rel/ogc/1.0/"
REL_PROCESSES = REL + "processes"
REL_JOB_LIST = REL + "job-list"
REL_RESULTS = REL + "results"
JSON = "application/json"


def timestamp(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:  # the engine keeps UTC; some databases drop the zone
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def status_info(job: JobRecord, api: str) -> dict[str, Any]:
    """The statusInfo of ``job``; ``api`` is the API's base URL (its landing page)."""
    href = f"{api}/jobs/{job.id}"
    links: list[dict[str, Any]] = [
        {"href": href, "rel": "self", "type": JSON, "title": "This job's status"},
        {
            "href": f"{href}?f=html",
            "rel": "alternate",
            "type": "text/html",
            "title": "This job's status as HTML",
        },
        {
            "href": f"{api}/processes/{job.process_id}",
            "rel": "up",
            "type": JSON,
            "title": "The process it runs",
        },
    ]
    if job.status is JobStatus.successful:
        links.append(
            {"href": f"{href}/results", "rel": REL_RESULTS, "type": JSON, "title": "Its results"}
        )
    info: dict[str, Any] = {
        "jobID": job.id,
        "processID": job.process_id,
        "type": "process",
        "status": job.status.value,
        "message": job.error if job.status is JobStatus.failed and job.error else job.message,
        "created": timestamp(job.created),
        "started": timestamp(job.started),
        "finished": timestamp(job.finished),
        "updated": timestamp(job.updated),
        "progress": job.progress,
        "links": links,
    }
    return {k: v for k, v in info.items() if v is not None}


def results_document(
    job: JobRecord, api: str, outputs: dict[str, str] | None = None
) -> dict[str, Any]:
    """results.yaml: output id -> value (or ``{"href": ...}``); ``outputs`` (id -> "value"
    or "reference") picks and shapes them, every output by value when None."""
    results = job.results or {}
    chosen = outputs if outputs is not None else dict.fromkeys(results, "value")
    document: dict[str, Any] = {}
    for name, mode in chosen.items():
        if name not in results:
            continue
        value = results[name]
        if file_href(value) is not None:
            # A file the task wrote, named relative to its result directory: served at
            # this URL to the job's owner (strato.processes.api.files).
            value = {**value, "href": f"{api}/jobs/{job.id}/results/{name}"}
        elif mode == "reference" and not _is_reference(value):
            value = {"href": f"{api}/jobs/{job.id}/results/{name}", "type": JSON}
        document[name] = value
    return document


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and "href" in value


def file_href(value: Any) -> str | None:
    """The path, relative to its job's result directory, of an output that is a file the
    task wrote (``{"href": "result.nc"}``); None for anything else."""
    if not _is_reference(value):
        return None
    href = value["href"]
    if not isinstance(href, str) or not href or "://" in href or href.startswith("/"):
        return None
    return href
