"""Workflows over OGC API - Processes against a running node: a DAG of built-in
processes with two outputs, each step a job whose status the workflow's lists; a failed
step named with its reason, the others cancelled; dismissing the whole cancels its
steps; Part 3 nested processes; cycles and unknown processes refused before anything runs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.processes.conftest import Node
from tests.processes.workflow_support import (
    DOMAIN,
    data_dir,
    expected,
    model_file,
    open_nc,
    two_outputs,
    wait_done,
)

EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def start(http: httpx.Client, node: Node, inputs: dict[str, Any]) -> str:
    answer = http.post(
        "/processes/workflow/execution",
        json={"inputs": inputs},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"].endswith(answer.json()["jobID"])
    return str(answer.json()["jobID"])


def test_a_two_output_workflow(http: httpx.Client, node: Node) -> None:
    path = model_file(node)
    wid = start(http, node, two_outputs(path))
    status = wait_done(http, node, wid)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    steps = {s["name"]: s for s in status["steps"]}
    assert set(steps) == {"sub", "mean", "max"}
    for step in steps.values():
        assert step["status"] == "successful"
        assert step["progress"] == 100
        # Each step is a job of its own, visible to its owner.
        job = http.get(f"/jobs/{step['jobID']}", headers=node.auth("ann")).json()
        assert job["processID"] == step["processID"]
        assert job["status"] == "successful"
    assert [s["processID"] for s in status["steps"]] == ["subset", "reduce", "reduce"]
    results = http.get(f"/jobs/{wid}/results", headers=node.auth("ann")).json()
    assert set(results) == {"mean", "max"}
    want = expected(path)
    for name in ("mean", "max"):
        got = open_nc(data_dir(node) / "jobs" / wid / f"{name}.nc")
        np.testing.assert_allclose(got.tas.values, want[name].values, rtol=1e-6)
    # Listed like any job.
    listed = http.get("/jobs?processID=workflow", headers=node.auth("ann")).json()["jobs"]
    assert wid in [job["jobID"] for job in listed]


def test_nested_processes_part_3(http: httpx.Client, node: Node) -> None:
    path = model_file(node)
    nested = {
        "process": f"{node.url}/processes/subset",
        "inputs": {"href": str(path), "variable": "tas", "domain": DOMAIN},
    }
    body = {"inputs": {"href": nested, "variable": "tas", "axes": ["time"], "method": "max"}}
    answer = http.post("/processes/reduce/execution", json=body, headers=node.auth("ann"))
    assert answer.status_code == 200, answer.text
    wid = answer.headers["Link"].split(">")[0].rsplit("/", 1)[1]
    got = open_nc(data_dir(node) / "jobs" / wid / "result.nc")
    np.testing.assert_allclose(got.tas.values, expected(path)["max"].values, rtol=1e-6)
    status = http.get(f"/jobs/{wid}", headers=node.auth("ann")).json()
    assert [s["name"] for s in status["steps"]] == ["main.href", "main"]


def gate(node: Node, name: str, **extra: Any) -> dict[str, Any]:
    path = node.gates / secrets.token_hex(8)
    return {"process": "gate", "inputs": {"path": str(path), "name": name, **extra}}


def test_a_failed_step_is_named_with_its_reason(http: httpx.Client, node: Node) -> None:
    failing = gate(node, "a", fail=True)
    waiting = gate(node, "b")
    wid = start(
        http,
        node,
        {"steps": {"bad": failing, "slow": waiting}, "outputs": {"a": "bad", "b": "slow"}},
    )
    # The slow step runs (its gate stays shut) while the bad one fails.
    while True:
        status = http.get(f"/jobs/{wid}", headers=node.auth("ann")).json()
        steps = {s["name"]: s for s in status["steps"]}
        if all("jobID" in s for s in steps.values()):
            break
    open(failing["inputs"]["path"], "w").close()
    status = wait_done(http, node, wid)
    assert status["status"] == "failed"
    assert "'bad'" in status["message"]
    assert "asked to fail" in status["message"]
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["bad"]["status"] == "failed"
    slow = http.get(f"/jobs/{steps['slow']['jobID']}", headers=node.auth("ann")).json()
    assert slow["status"] == "dismissed"


def test_dismissing_the_workflow_cancels_its_steps(http: httpx.Client, node: Node) -> None:
    wid = start(http, node, {"steps": {"g": gate(node, "g")}, "outputs": {"echo": "g"}})
    while True:
        status = http.get(f"/jobs/{wid}", headers=node.auth("ann")).json()
        step = status["steps"][0]
        if "jobID" in step:
            break
    answer = http.delete(f"/jobs/{wid}", headers=node.auth("ann"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "dismissed"
    assert http.get(f"/jobs/{wid}", headers=node.auth("ann")).status_code == 404
    while True:
        job = http.get(f"/jobs/{step['jobID']}", headers=node.auth("ann")).json()
        if job["status"] not in ("accepted", "running"):
            break
    assert job["status"] == "dismissed"


def test_cycles_and_unknown_processes_are_refused(http: httpx.Client, node: Node) -> None:
    a = gate(node, "x")
    b = gate(node, "y")
    a["inputs"]["name"] = {"step": "b", "output": "echo"}
    b["inputs"]["name"] = {"step": "a"}
    cyclic = {"inputs": {"steps": {"a": a, "b": b}, "outputs": {"o": "a"}}}
    answer = http.post("/processes/workflow/execution", json=cyclic, headers=node.auth("ann"))
    assert answer.status_code == 400, answer.text
    assert "cycle" in answer.json()["detail"]
    assert "a -> b -> a" in answer.json()["detail"]

    unknown = {
        "inputs": {"steps": {"s": {"process": "no-such", "inputs": {}}}, "outputs": {"o": "s"}}
    }
    answer = http.post("/processes/workflow/execution", json=unknown, headers=node.auth("ann"))
    assert answer.status_code == 404
    assert answer.json()["type"] == EXC + "no-such-process"
    assert "steps.s" in answer.json()["detail"]

    nested = {"inputs": {"name": {"process": "https://elsewhere/processes/nope"}}}
    answer = http.post("/processes/hello-world/execution", json=nested, headers=node.auth("ann"))
    assert answer.status_code == 404
    assert "'nope'" in answer.json()["detail"]
    assert "$.inputs.name" in answer.json()["detail"]

    dangling = {"inputs": {"steps": {"a": gate(node, "z")}, "outputs": {"o": "nowhere"}}}
    answer = http.post("/processes/workflow/execution", json=dangling, headers=node.auth("ann"))
    assert answer.status_code == 400
    assert "'nowhere'" in answer.json()["detail"]
    # Nothing ran: no gate job was made by any of them.
    jobs = http.get("/jobs?processID=gate&status=running", headers=node.auth("ann")).json()
    assert all(job["status"] != "running" for job in jobs["jobs"])


def test_workflows_need_the_process_scope(http: httpx.Client, node: Node) -> None:
    body = {
        "inputs": {
            "steps": {"h": {"process": "hello-world", "inputs": {"name": "w"}}},
            "outputs": {"o": "h"},
        }
    }
    assert http.post("/processes/workflow/execution", json=body).status_code == 401
    refused = http.post("/processes/workflow/execution", json=body, headers=node.auth("rita"))
    assert refused.status_code == 403
    done = http.post("/processes/workflow/execution", json=body, headers=node.auth("ann"))
    assert done.status_code == 200, done.text
    assert done.json() == {"o": "Hello w!"}
