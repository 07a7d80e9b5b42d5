"""OWSLib's OGC API - Processes client against a running strato: list, describe,
execute synchronously and asynchronously, poll, fetch results and dismiss hello-world."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from owslib.ogcapi import REQUEST_HEADERS
from owslib.ogcapi.processes import Processes

from tests.processes.conftest import Node

CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"


@pytest.fixture
def client(node: Node) -> Iterator[Processes]:
    # OWSLib keeps its headers in one module-level dict shared by every client: the
    # token and Prefer it is given are taken out again after the test.
    kept = dict(REQUEST_HEADERS)
    try:
        yield Processes(node.url, headers=node.auth("ann"))
    finally:
        REQUEST_HEADERS.clear()
        REQUEST_HEADERS.update(kept)


def test_lists_and_describes_hello_world(client: Processes) -> None:
    conforms = client.conformance()["conformsTo"]
    for name in ("core", "ogc-process-description", "json", "job-list", "dismiss", "callback"):
        assert CONF + name in conforms
    rels = {link["rel"] for link in client.links}
    assert "http://www.opengis.net/def/rel/ogc/1.0/processes" in rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/job-list" in rels
    listed = {p["id"]: p for p in client.processes()}
    hello = listed["hello-world"]
    assert set(hello["jobControlOptions"]) == {"sync-execute", "async-execute", "dismiss"}
    assert set(hello["outputTransmission"]) == {"value", "reference"}
    described = client.process("hello-world")
    assert described["inputs"]["name"]["schema"] == {"type": "string"}
    assert described["inputs"]["name"]["minOccurs"] == 1
    assert described["inputs"]["message"]["minOccurs"] == 0
    assert described["outputs"]["echo"]["schema"]["type"] == "string"


def test_executes_synchronously(client: Processes) -> None:
    results = client.execute("hello-world", {"name": "OWSLib", "message": "Sync."})
    assert results == {"echo": "Hello OWSLib! Sync."}


def test_executes_asynchronously_polls_fetches_and_dismisses(client: Processes, node: Node) -> None:
    status = client.execute("hello-world", {"name": "OWSLib"}, async_=True)
    assert status["status"] in ("accepted", "running", "successful")
    assert client.response_headers["Preference-Applied"] == "respond-async"
    location = client.response_headers["Location"]
    assert location == f"{node.url}/jobs/{status['jobID']}"
    job_path = location.removeprefix(node.url + "/")
    # Polling as a client does: the job's status until it has ended.
    while status["status"] in ("accepted", "running"):
        status = client._request(path=job_path)
    assert status["status"] == "successful"
    assert status["progress"] == 100
    results_rel = "http://www.opengis.net/def/rel/ogc/1.0/results"
    [results_link] = [link for link in status["links"] if link["rel"] == results_rel]
    assert client._request(path=job_path + "/results") == {"echo": "Hello OWSLib!"}
    listed = client._request(path="jobs", kwargs={"processID": "hello-world"})
    assert status["jobID"] in {job["jobID"] for job in listed["jobs"]}

    client._request(method="DELETE", path=job_path)
    gone = httpx.get(results_link["href"], headers=node.auth("ann"), timeout=30)
    assert gone.status_code == 404
    assert gone.json()["type"].endswith("/no-such-job")
