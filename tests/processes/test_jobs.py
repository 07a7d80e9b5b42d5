"""Jobs over HTTP: results before completion, others' jobs, scopes, bad inputs and
the problems the standard names, job list filters and paging."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.processes.conftest import Node

EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def start_gate(http: httpx.Client, node: Node, who: str = "ann", **inputs: Any) -> tuple[str, Any]:
    gate = node.gates / secrets.token_hex(8)
    answer = http.post(
        "/processes/gate/execution",
        json={"inputs": {"path": str(gate), "name": "gated", **inputs}},
        headers={**node.auth(who), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["jobID"], gate


def wait_done(http: httpx.Client, node: Node, job_id: str, who: str = "ann") -> dict[str, Any]:
    while True:
        status = http.get(f"/jobs/{job_id}", headers=node.auth(who)).json()
        if status["status"] not in ("accepted", "running"):
            return status


def test_results_are_not_ready_while_the_job_runs(http: httpx.Client, node: Node) -> None:
    job_id, gate = start_gate(http, node)
    # Visible at once, before it has run.
    assert http.get(f"/jobs/{job_id}", headers=node.auth("ann")).status_code == 200
    early = http.get(f"/jobs/{job_id}/results", headers=node.auth("ann"))
    assert early.status_code == 404
    assert early.headers["content-type"] == "application/problem+json"
    assert early.json()["type"] == EXC + "result-not-ready"
    gate.touch()
    assert wait_done(http, node, job_id)["status"] == "successful"
    done = http.get(f"/jobs/{job_id}/results", headers=node.auth("ann"))
    assert done.json() == {"echo": "gated"}


def test_another_users_job_is_no_job(http: httpx.Client, node: Node) -> None:
    job_id, gate = start_gate(http, node, who="ann")
    try:
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
            answer = http.get(path, headers=node.auth("bob"))
            assert answer.status_code == 404, path
            assert answer.json()["type"] == EXC + "no-such-job"
        assert http.delete(f"/jobs/{job_id}", headers=node.auth("bob")).status_code == 404
        listed = http.get("/jobs", headers=node.auth("bob")).json()["jobs"]
        assert job_id not in {job["jobID"] for job in listed}
        # The administrator sees every job.
        assert http.get(f"/jobs/{job_id}", headers=node.auth("admin")).status_code == 200
        listed = http.get("/jobs", headers=node.auth("admin")).json()["jobs"]
        assert job_id in {job["jobID"] for job in listed}
    finally:
        gate.touch()
    wait_done(http, node, job_id)


def test_dismissing_a_running_job_cancels_and_removes_it(http: httpx.Client, node: Node) -> None:
    job_id, _gate = start_gate(http, node)
    answer = http.delete(f"/jobs/{job_id}", headers=node.auth("ann"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "dismissed"
    assert http.get(f"/jobs/{job_id}", headers=node.auth("ann")).status_code == 404


def test_execution_needs_the_process_scope(http: httpx.Client, node: Node) -> None:
    body = {"inputs": {"name": "x"}}
    refused = http.post("/processes/hello-world/execution", json=body, headers=node.auth("rita"))
    assert refused.status_code == 403
    assert "process" in refused.json()["detail"]
    anonymous = http.post("/processes/hello-world/execution", json=body)
    assert anonymous.status_code == 401
    # Reading the descriptions needs no more than read.
    assert http.get("/processes/hello-world", headers=node.auth("rita")).status_code == 200


def test_unknown_process_and_job(http: httpx.Client, node: Node) -> None:
    for answer in (
        http.get("/processes/no-such"),
        http.post("/processes/no-such/execution", json={}, headers=node.auth("ann")),
    ):
        assert answer.status_code == 404
        assert answer.json()["type"] == EXC + "no-such-process"
    for path in ("/jobs/nope", "/jobs/nope/results"):
        answer = http.get(path, headers=node.auth("ann"))
        assert answer.status_code == 404
        assert answer.json()["type"] == EXC + "no-such-job"


@pytest.mark.parametrize(
    ("inputs", "name", "path"),
    [
        ({}, "name", "$.inputs.name"),
        ({"name": 3}, "name", "$.inputs.name"),
        ({"name": "x", "colour": "red"}, "colour", "$.inputs.colour"),
        ({"name": "x", "sizes": [1, -2]}, "sizes", "$.inputs.sizes[1]"),
        ({"name": "x", "sizes": [1, 2, 3, 4]}, "sizes", "$.inputs.sizes"),
        ({"name": "a" * 21}, "name", "$.inputs.name"),
        ({"name": {"value": 5, "mediaType": "text/plain"}}, "name", "$.inputs.name"),
    ],
)
def test_invalid_inputs_name_the_input_and_its_path(
    http: httpx.Client, node: Node, inputs: dict[str, Any], name: str, path: str
) -> None:
    body = {"inputs": {"path": str(node.gates / "never"), **inputs}}
    answer = http.post("/processes/gate/execution", json=body, headers=node.auth("ann"))
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert f"'{name}'" in problem["detail"]
    assert path in problem["detail"]
    assert {"input": name, "path": path} in [
        {"input": e["input"], "path": e["path"]} for e in problem["errors"]
    ]


def test_a_qualified_value_is_its_value(http: httpx.Client, node: Node) -> None:
    body = {"inputs": {"name": {"value": "Q", "mediaType": "text/plain"}}, "response": "raw"}
    answer = http.post("/processes/hello-world/execution", json=body, headers=node.auth("ann"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "Hello Q!"


def test_an_output_by_reference(http: httpx.Client, node: Node) -> None:
    body = {
        "inputs": {"name": "R"},
        "outputs": {"echo": {"transmissionMode": "reference"}},
        "response": "document",
    }
    answer = http.post("/processes/hello-world/execution", json=body, headers=node.auth("ann"))
    href = answer.json()["echo"]["href"]
    assert httpx.get(href, headers=node.auth("ann")).text == "Hello R!"


def test_a_failed_job_says_why(http: httpx.Client, node: Node) -> None:
    job_id, gate = start_gate(http, node, fail=True)
    gate.touch()
    status = wait_done(http, node, job_id)
    assert status["status"] == "failed"
    assert "asked to fail" in status["message"]


def test_job_list_filters_and_pages(http: httpx.Client, node: Node) -> None:
    who = node.auth("bob")
    made = []
    for i in range(3):
        answer = http.post(
            "/processes/hello-world/execution", json={"inputs": {"name": f"n{i}"}}, headers=who
        )
        assert answer.status_code == 200
        made.append(answer.headers["Link"].split(">")[0].rsplit("/", 1)[1])
    seen: list[str] = []
    url: str | None = "/jobs?processID=hello-world&status=successful&limit=2"
    while url is not None:
        page = http.get(url, headers=who).json()
        assert len(page["jobs"]) <= 2
        seen += [job["jobID"] for job in page["jobs"]]
        nexts = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nexts[0] if nexts else None
    assert seen[:3] == made[::-1]  # newest first, across pages
    none = http.get("/jobs?processID=gate", headers=who).json()["jobs"]
    assert none == []
    assert http.get("/jobs?status=running&status=accepted", headers=who).json()["jobs"] == []
    later = http.get("/jobs?datetime=2999-01-01T00:00:00Z/..", headers=who).json()["jobs"]
    assert later == []
    bad = http.get("/jobs?datetime=yesterday", headers=who)
    assert bad.status_code == 400


def test_html_pages(http: httpx.Client, node: Node) -> None:
    who = node.auth("ann")
    answer = http.post(
        "/processes/hello-world/execution", json={"inputs": {"name": "page"}}, headers=who
    )
    job_id = answer.headers["Link"].split(">")[0].rsplit("/", 1)[1]
    for path, seen in (
        ("", "processes"),
        ("/conformance", "ogcapi-processes-1/1.0/conf/html"),
        ("/processes", 'href="' + node.url + "/processes/hello-world?f=html"),
        ("/processes/hello-world", 'id="input-name"'),
        ("/jobs", job_id),
        (f"/jobs/{job_id}", "successful"),
    ):
        page = http.get(path, params={"f": "html"}, headers=who)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert seen in page.text, path
    # A browser's Accept asks for HTML too; a client's */* for JSON.
    browser = {**who, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    assert http.get("/processes", headers=browser).headers["content-type"].startswith("text/html")
    assert http.get("/processes", headers={"Accept": "*/*"}).json()["processes"]


def test_a_status_request_preferring_to_wait_is_answered_when_the_job_ends(
    http: httpx.Client, node: Node
) -> None:
    job_id, gate = start_gate(http, node)
    with ThreadPoolExecutor(1) as pool:
        # Asked before the gate opens: a status answered at once would say "running".
        asked = pool.submit(
            http.get, f"/jobs/{job_id}", headers={**node.auth("ann"), "Prefer": "wait=100"}
        )
        time.sleep(0.3)  # the request is in flight (ordering, not a measurement)
        gate.touch()
        answer = asked.result(timeout=60)
    assert answer.status_code == 200
    assert answer.json()["status"] == "successful"
    # Held at most as long as the node allows (processes.status_wait_seconds, 30).
    assert answer.headers["Preference-Applied"] == "wait=30"


def test_a_status_wait_ends_with_the_job_as_it_is_when_the_time_is_up(
    http: httpx.Client, node: Node
) -> None:
    job_id, gate = start_gate(http, node)
    try:
        answer = http.get(f"/jobs/{job_id}", headers={**node.auth("ann"), "Prefer": "wait=1"})
        assert answer.json()["status"] in ("accepted", "running")
        assert answer.headers["Preference-Applied"] == "wait=1"
        # Not another user's: a job they cannot see is no job, waited for or not.
        other = http.get(f"/jobs/{job_id}", headers={**node.auth("bob"), "Prefer": "wait=5"})
        assert other.status_code == 404
        # A preference that is not a number of seconds is ignored.
        plain = http.get(f"/jobs/{job_id}", headers={**node.auth("ann"), "Prefer": "wait=soon"})
        assert plain.status_code == 200
        assert "Preference-Applied" not in plain.headers
    finally:
        gate.touch()
    wait_done(http, node, job_id)
