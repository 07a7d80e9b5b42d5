"""The Stratus deployment shape end to end: one workflow whose steps run on two different
providers and on the portal itself, through the portal's OGC API (the explicit
``workflow`` process and Part 3 nested processes) and through the Stratus door.

    portal (strato api, HTTP)
      |- head:hello-world    -> head node over ZeroMQ (strato endpoint serve --zmq)
      |- remote:hello-world  -> a second strato node over OGC API - Processes (HTTP)
      '- hello-world         -> the portal's own job engine

The step on the head node greets first; the remote step and the local step each take
its greeting, and the workflow has both of theirs as outputs.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.processes.providers_support import Portal, portal

__all__ = ["portal"]  # the fixture, module-scoped here

HEAD = "Hello head! from the head node"
REMOTE = f"Hello remote! {HEAD}"
LOCAL = f"Hello portal! {HEAD}"
PROCESSES = {"h": "head:hello-world", "r": "remote:hello-world", "l": "hello-world"}


def explicit() -> dict[str, Any]:
    h = {"step": "h", "output": "echo"}
    return {
        "steps": {
            "h": {
                "process": "head:hello-world",
                "inputs": {"name": "head", "message": "from the head node"},
            },
            "r": {"process": "remote:hello-world", "inputs": {"name": "remote", "message": h}},
            "l": {"process": "hello-world", "inputs": {"name": "portal", "message": h}},
        },
        "outputs": {"remote": {"step": "r", "output": "echo"}, "local": {"step": "l"}},
    }


def stratus() -> dict[str, Any]:
    """The same workflow as a Stratus request: operations named by the provider's
    prefix, their inputs given as they are (strato's extension for processes that
    take no variable)."""
    return {
        "operation": [
            {
                "name": "head:hello-world",
                "inputs": {"name": "head", "message": "from the head node"},
                "result": "h",
            },
            {
                "name": "remote:hello-world",
                "inputs": {"name": "remote", "message": {"result": "h"}},
                "result": "remote",
            },
            {
                "name": "xop:hello-world",
                "inputs": {"name": "portal", "message": {"result": "h"}},
                "result": "local",
            },
        ]
    }


def follow(portal: Portal, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status = httpx.get(f"{portal.url}/jobs/{job}", headers=portal.auth, timeout=30).json()
        if status["status"] not in ("accepted", "running"):
            return dict(status)
        assert time.monotonic() < deadline, status
        time.sleep(0.05)  # a plain client's polling; the test asserts no timing


def check_steps(portal: Portal, status: dict[str, Any], names: dict[str, str]) -> None:
    """Each step ran where its id routes it, as a job of the portal of its own."""
    steps = {s["name"]: s for s in status["steps"]}
    assert {name: s["processID"] for name, s in steps.items()} == names
    for step in steps.values():
        assert step["status"] == "successful", step
        assert step["progress"] == 100
        job = httpx.get(
            f"{portal.url}/jobs/{step['jobID']}", headers=portal.auth, timeout=30
        ).json()
        assert job["status"] == "successful"
        assert job["processID"] == step["processID"]
    echoes = {
        name: httpx.get(
            f"{portal.url}/jobs/{steps[name]['jobID']}/results", headers=portal.auth, timeout=30
        ).json()["echo"]
        for name in steps
    }
    assert sorted(echoes.values()) == sorted([HEAD, REMOTE, LOCAL])


def remote_runs(portal: Portal) -> int:
    """hello-world jobs the second node ran (the portal's remote steps)."""
    listed = httpx.get(
        f"{portal.remote.url}/processes-api/jobs",
        params={"processID": "hello-world", "limit": 1000},
        headers={"Authorization": f"Bearer {portal.remote_token}"},
        timeout=30,
    ).json()["jobs"]
    return len(listed)


def test_a_workflow_over_two_providers_and_the_portal(portal: Portal) -> None:
    before = remote_runs(portal)
    made = httpx.post(
        f"{portal.url}/processes/workflow/execution",
        json={"inputs": explicit()},
        headers={**portal.auth, "Prefer": "respond-async"},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    status = follow(portal, made.json()["jobID"])
    assert status["status"] == "successful", status
    check_steps(portal, status, PROCESSES)
    results = httpx.get(
        f"{portal.url}/jobs/{status['jobID']}/results", headers=portal.auth, timeout=30
    )
    assert results.status_code == 200, results.text
    assert results.json() == {"remote": REMOTE, "local": LOCAL}
    # The remote step ran on the second node, not here.
    assert remote_runs(portal) == before + 1
    assert "Traceback" not in portal.head.log_text()


def test_nested_processes_across_providers_synchronously(portal: Portal) -> None:
    head = {
        "process": f"{portal.url}/processes/head:hello-world",
        "inputs": {"name": "head", "message": "from the head node"},
    }
    remote = {
        "process": f"{portal.url}/processes/remote:hello-world",
        "inputs": {"name": "remote", "message": head},
    }
    answer = httpx.post(
        f"{portal.url}/processes/hello-world/execution",
        json={"inputs": {"name": "portal", "message": remote}},
        headers=portal.auth,
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"echo": f"Hello portal! {REMOTE}"}
    monitor = answer.headers["Link"].split(">")[0].lstrip("<")
    status = httpx.get(monitor, headers=portal.auth, timeout=30).json()
    names = {s["name"]: s["processID"] for s in status["steps"]}
    assert names == {
        "main": "hello-world",
        "main.message": "remote:hello-world",
        "main.message.message": "head:hello-world",
    }
    assert all(s["status"] == "successful" for s in status["steps"])


def test_the_stratus_door_runs_the_same_workflow(portal: Portal) -> None:
    base = portal.api.url + "/stratus"
    epas = httpx.get(f"{base}/capabilities", params={"type": "epas"}, timeout=60).json()["epas"]
    assert {"head:hello-world", "remote:hello-world", "xop:hello-world"} <= set(epas)
    before = remote_runs(portal)
    made = httpx.post(f"{base}/exe", json=stratus(), headers=portal.auth, timeout=60)
    assert made.status_code == 201, made.text
    rid = made.json()["rid"]
    deadline = time.monotonic() + 120
    while True:
        status = httpx.get(
            f"{base}/status", params={"rid": rid}, headers=portal.auth, timeout=30
        ).json()
        if status["status"] not in ("queued", "executing"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["status"] == "completed", status
    assert status["outputs"] == ["local", "remote"]
    check_steps(
        portal, status, {"op0": PROCESSES["h"], "op1": PROCESSES["r"], "op2": "hello-world"}
    )
    for output, want in (("remote", REMOTE), ("local", LOCAL)):
        got = httpx.get(
            f"{base}/result", params={"rid": rid, "output": output}, headers=portal.auth, timeout=30
        )
        assert got.status_code == 200, got.text
        assert got.json()["value"] == want
    # The same job under the OGC API, with the same results as the OGC route's.
    results = httpx.get(f"{portal.url}/jobs/{rid}/results", headers=portal.auth, timeout=30)
    assert results.json() == {"remote": REMOTE, "local": LOCAL}
    assert remote_runs(portal) == before + 1


def test_a_prefixed_operation_the_provider_lacks_is_named(portal: Portal) -> None:
    request = stratus()
    request["operation"][1]["name"] = "remote:nothing-here"
    answer = httpx.post(
        f"{portal.api.url}/stratus/exe", json=request, headers=portal.auth, timeout=60
    )
    assert answer.status_code == 404, answer.text
    assert "operation[1]" in answer.json()["detail"]
    assert "remote:nothing-here" in answer.json()["detail"]
