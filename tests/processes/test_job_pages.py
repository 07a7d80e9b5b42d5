"""The jobs pages as HTML over HTTP, as a browser without JavaScript gets them: a job's
message escaped wherever it is drawn, a dismiss button for each job (shown by the
pages' script, which is what sends DELETE), a reload every few seconds while a job shown
runs and none once it ended, and a workflow's steps drawn with their status."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.processes.conftest import Node

HOSTILE = '<script>window.pwned=1</script>"><b>'
RELOAD = '<noscript><meta http-equiv="refresh"'


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def html(http: httpx.Client, node: Node, path: str) -> str:
    page = http.get(path, params={"f": "html"}, headers=node.auth("ann"))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    return page.text


def execute(http: httpx.Client, node: Node, process: str, inputs: dict[str, Any]) -> str:
    answer = http.post(
        f"/processes/{process}/execution",
        json={"inputs": inputs},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["jobID"])


def status_when(
    http: httpx.Client, node: Node, job_id: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The job's statusInfo once ``ready`` says so (within 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: dict[str, Any] = http.get(f"/jobs/{job_id}", headers=node.auth("ann")).json()
        if ready(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {status}")


def running(http: httpx.Client, node: Node, job_id: str) -> dict[str, Any]:
    return status_when(
        http, node, job_id, lambda s: s["status"] == "running" and bool(s.get("message"))
    )


def finished(http: httpx.Client, node: Node, job_id: str) -> dict[str, Any]:
    return status_when(http, node, job_id, lambda s: s["status"] not in ("accepted", "running"))


def test_a_running_job_on_the_pages(http: httpx.Client, node: Node) -> None:
    gate = node.gates / secrets.token_hex(8)
    job_id = execute(http, node, "gate", {"path": str(gate), "name": "html", "note": HOSTILE})
    assert running(http, node, job_id)["message"] == HOSTILE

    listed = html(http, node, "/jobs")
    one = html(http, node, f"/jobs/{job_id}")
    for page in (listed, one):
        assert HOSTILE not in page
        # Drawn as text, and in data-message as a value.
        assert page.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") == 2
        assert RELOAD in page
        assert '<script src="/static/jobs.js" defer></script>' in page
    assert f'<button type="button" class="dismiss" data-job="{job_id}" hidden>' in listed
    assert '<button type="button" id="dismiss" hidden>' in one
    # No results yet: the link is there for the script to show, hidden.
    assert '<span id="results-line" hidden>' in one

    gate.touch()
    assert finished(http, node, job_id)["status"] == "successful"
    one = html(http, node, f"/jobs/{job_id}")
    assert RELOAD not in one
    assert '<span id="results-line">' in one
    assert f'href="{node.url}/jobs/{job_id}/results"' in one


def test_the_script_is_served(http: httpx.Client, node: Node) -> None:
    script = httpx.get(node.api.url + "/static/jobs.js", timeout=30)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    # Server text is set as text, never parsed as HTML.
    assert "innerHTML" not in script.text


def test_a_workflow_job_page_draws_its_steps(http: httpx.Client, node: Node) -> None:
    gate = node.gates / secrets.token_hex(8)
    workflow = {
        "steps": {
            "first": {"process": "gate", "inputs": {"path": str(gate), "name": "Bo"}},
            "second": {
                "process": "hello-world",
                "inputs": {"name": {"step": "first", "output": "echo"}},
            },
        },
        "outputs": {"echo": "second"},
    }
    wid = execute(http, node, "workflow", workflow)
    status = status_when(
        http,
        node,
        wid,
        lambda s: any(
            t["name"] == "first" and t["status"] == "running" for t in s.get("steps", [])
        ),
    )
    steps = {s["name"]: s for s in status["steps"]}
    page = html(http, node, f"/jobs/{wid}")
    assert '<table id="steps">' in page
    assert '<tr class="status-running" data-key="first" data-status="running"' in page
    assert '<tr class="status-waiting" data-key="second" data-status="waiting"' in page
    assert f'href="{node.url}/jobs/{steps["first"]["jobID"]}?f=html"' in page
    gate.touch()
    assert finished(http, node, wid)["status"] == "successful"
    page = html(http, node, f"/jobs/{wid}")
    assert page.count('<td class="status">successful</td>') == 2
    # A job that is no workflow has no steps.
    plain = html(http, node, f"/jobs/{steps['first']['jobID']}")
    assert 'id="steps"' not in plain
