"""Runs and tasks as the JSON of the runs API, with their links; the request body read
bounded (size, nesting) before it is taken for a config."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from strato import jsonio
from strato.errors import InvalidInput, PayloadTooLarge
from strato.pipelines.records import RunRecord, TaskRecord
from strato.pipelines.submissions import MAX_NESTING

API = "/api/v1"
WES = "/ga4gh/wes/v1"


def base_url(public_url: str | None, request: Request) -> str:
    """The node's base URL as links name it: the configured public URL, else the request's."""
    return (public_url or str(request.base_url)).rstrip("/")


def when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def run_links(base: str, run_id: str) -> dict[str, str]:
    run = f"{base}{API}/runs/{run_id}"
    return {
        "run": run,
        "tasks": f"{run}/tasks",
        "cancel": f"{run}/cancel",
        "resume": f"{run}/resume",
        "retry": f"{run}/retry",
        "wes": f"{base}{WES}/runs/{run_id}",
    }


def run_summary(run: RunRecord, base: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "project": run.config.get("project"),
        "submitter": run.submitter,
        "state": run.state.value,
        "created": when(run.created),
        "started": when(run.started),
        "finished": when(run.finished),
        "reason": run.reason,
        "urls": run_links(base, run.id),
    }


def run_detail(run: RunRecord, base: str) -> dict[str, Any]:
    return run_summary(run, base) | {
        "config": run.config,
        "project_dir": run.project,
        "updated": when(run.updated),
        "steps": dict(run.steps),
    }


def task_view(task: TaskRecord, base: str) -> dict[str, Any]:
    return {
        "name": task.name,
        "state": task.state.value,
        "attempts": task.attempts,
        "exit_code": task.exit_code,
        "reason": task.reason,
        "started": when(task.started),
        "finished": when(task.finished),
        "parents": sorted(task.parents),
        "cmd": task.spec.cmd,
        "log": f"{base}{API}/runs/{task.run_id}/tasks/{task.name}/log",
    }


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON: PayloadTooLarge past ``limit`` bytes (read no further),
    InvalidInput for what is not JSON or nests deeper than a config does."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise PayloadTooLarge(f"the config is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the config is larger than {limit} bytes")
    return parse_json(bytes(body), "the body")


def parse_json(data: bytes | str, what: str) -> Any:
    if not data.strip():
        raise InvalidInput(f"{what} is empty: a config is a JSON object")
    try:
        return jsonio.loads(data)
    except RecursionError:
        raise InvalidInput(f"{what} nests deeper than a config does ({MAX_NESTING})") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidInput(f"{what} is not JSON: {str(exc)[:200]}") from None
