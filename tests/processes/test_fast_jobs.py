"""A job's status and results answered before FastAPI: the same answer as the
application's, and only in the plain case (strato.processes.api.fast_jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.auth import Scope as Scopes
from strato.context import Context
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.processes.api.fast_jobs import JobRequestsFastPath
from strato.processes.registry import Registry
from strato.processes.service import ProcessService
from strato.processes.settings import ProcessesSettings
from strato.settings import LogSettings, Settings
from tests.fast_path_support import FastPathProbe
from tests.processes.conftest import Node

COMPARED = ("content-type", "content-length", "link", "preference-applied")
# A header the application ignores but the fast path leaves to it: the plain path.
BY_APP = {"Cookie": "session=none"}


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def test_status_and_results_are_the_same_whichever_path_answers(
    http: httpx.Client, node: Node
) -> None:
    created = http.post(
        "/processes/hello-world/execution",
        json={"inputs": {"name": "Fast", "message": "same?"}},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert created.status_code == 201
    job = created.headers["Location"].removeprefix(node.url)
    for path, extra in [
        (job, {"Prefer": "wait=10"}),  # held until the end, by either path
        (job, {}),
        (f"{job}?f=json", {}),
        (f"{job}/results", {}),
    ]:
        fast = http.get(path, headers={**node.auth("ann"), **extra})
        by_app = http.get(path, headers={**node.auth("ann"), **extra, **BY_APP})
        assert fast.status_code == by_app.status_code == 200, path
        assert fast.json() == by_app.json(), path
        for name in COMPARED:
            assert fast.headers.get(name) == by_app.headers.get(name), (path, name)
        # Still inside the request context.
        assert len(fast.headers["x-request-id"]) == 32
    assert http.get(f"{job}/results", headers=node.auth("ann")).json() == {
        "echo": "Hello Fast! same?"
    }
    metrics = httpx.get(node.api.url + "/metrics").text
    assert 'route="/processes-api/jobs/{jobID}"' in metrics
    assert 'route="/processes-api/jobs/{jobID}/results"' in metrics


def _Served(service: ProcessService, ctx: Context) -> FastPathProbe:
    return FastPathProbe(
        lambda app: JobRequestsFastPath(
            app, service=service, identities=ctx.identities, public_url=None
        )
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FastPathProbe, ProcessService, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path / "state", log=LogSettings(access=False))
    ctx = Context.open(settings)
    ctx.migrate()
    engine: JobService = open_jobs(ctx.sessions, settings)
    engine.start()
    service = ProcessService(Registry.from_entry_points(None), engine, ProcessesSettings())
    tokens = {}
    for user in ("ann", "bob"):
        ctx.identities.create_user(user, scopes={Scopes.READ, Scopes.PROCESS})
        tokens[user] = ctx.identities.create_token(user, {Scopes.READ, Scopes.PROCESS}).secret
        ctx.identities.authenticate_token(tokens[user])  # checked lately: cached
    try:
        yield _Served(service, ctx), service, tokens
    finally:
        engine.close()
        ctx.close()


def _run(service: ProcessService, who: str, process: str = "hello-world", **inputs: Any) -> str:
    from strato.auth import Principal

    principal = Principal(user=who, scopes=frozenset({Scopes.PROCESS}))
    job = service.submit(process, {"name": "n", "message": "m", **inputs}, principal)
    done = asyncio.run(service.wait(job, 60))
    assert done.done
    return job.id


def test_only_a_plain_request_for_a_job_held_in_memory_skips_the_application(
    served: tuple[FastPathProbe, ProcessService, dict[str, str]],
) -> None:
    fast, service, tokens = served
    job = f"/processes-api/jobs/{_run(service, 'ann')}"
    ann = f"Bearer {tokens['ann']}"
    assert fast.get(job, Authorization=ann) == 200
    assert fast.get(f"{job}/results", Authorization=ann) == 200
    assert fast.get(f"{job}?f=json", Authorization=ann) == 200
    assert fast.reached_app == []
    for path, method, headers in [
        (job, "GET", {}),  # anonymous: the application refuses
        (job, "GET", {"Authorization": f"Bearer {tokens['bob']}"}),  # another user's
        (job, "GET", {"Authorization": "Bearer strato_not-a-token"}),  # not checked lately
        (job, "GET", {"Authorization": f"Basic {tokens['ann']}"}),
        (job, "GET", {"Authorization": ann, "Accept": "text/html"}),  # a page
        (f"{job}?f=html", "GET", {"Authorization": ann}),
        (f"{job}?f=json&x=1", "GET", {"Authorization": ann}),
        (job, "GET", {"Authorization": ann, "Cookie": "a=b"}),
        (job, "HEAD", {"Authorization": ann}),
        (job, "DELETE", {"Authorization": ann}),
        ("/processes-api/jobs/nope", "GET", {"Authorization": ann}),
        ("/processes-api/jobs/nope/results", "GET", {"Authorization": ann}),
        (f"{job}/results/echo", "GET", {"Authorization": ann}),
    ]:
        fast.reached_app.clear()
        assert fast.get(path, method, **headers) == 299, (path, method, headers)
        assert fast.reached_app == [path.split("?")[0]]


def test_a_failed_jobs_results_and_a_job_not_held_here_go_to_the_application(
    served: tuple[FastPathProbe, ProcessService, dict[str, str]], tmp_path: Path
) -> None:
    fast, service, tokens = served
    ann = f"Bearer {tokens['ann']}"
    # A job whose task cannot be found fails: its results are a problem the app states.
    failed = service.jobs.submit(
        task="strato.no_such_module:run", inputs={}, owner="ann", process_id="hello-world"
    )
    asyncio.run(service.jobs.wait(failed.id, 60))
    assert fast.get(f"/processes-api/jobs/{failed.id}", Authorization=ann) == 200
    assert fast.get(f"/processes-api/jobs/{failed.id}/results", Authorization=ann) == 299
    # A job another engine ran (a previous server's): only in the database.
    settings = Settings(data_dir=tmp_path / "state", log=LogSettings(access=False))
    ctx = Context.open(settings)
    other = open_jobs(ctx.sessions, settings)
    other.start(recover=False)
    try:
        job = other.submit(
            task="strato.processes.hello_world:run",
            inputs={"name": "n", "message": "m"},
            owner="ann",
            process_id="hello-world",
        )
        asyncio.run(other.wait(job.id, 60))
    finally:
        other.close()
        ctx.close()
    assert service.jobs.get(job.id).done
    assert fast.get(f"/processes-api/jobs/{job.id}", Authorization=ann) == 299


def test_a_middleware_told_off_leaves_every_request_to_the_application(
    served: tuple[FastPathProbe, ProcessService, dict[str, str]],
) -> None:
    fast, service, tokens = served
    job = f"/processes-api/jobs/{_run(service, 'ann')}"
    fast.fast.enabled = False  # as processes.fast_job_requests = false builds it
    assert fast.get(job, Authorization=f"Bearer {tokens['ann']}") == 299
    assert fast.reached_app == [job]
    assert not ProcessesSettings(fast_job_requests=False).fast_job_requests
