"""Processes routed by prefix to providers, end to end on loopback: a portal node
(`strato api`) -> a head node over ZeroMQ (`strato endpoint serve --zmq`) -> its
hello-world, and -> a second strato node over OGC API - Processes (HTTP); both executed
through the portal's own OGC API, as any client would, and with OWSLib."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.processes.providers_support import Portal, keys, portal

__all__ = ["portal"]  # the fixture, module-scoped here


def run_async(portal: Portal, process_id: str, inputs: dict[str, object]) -> dict[str, object]:
    made = httpx.post(
        f"{portal.url}/processes/{process_id}/execution",
        json={"inputs": inputs},
        headers={**portal.auth, "Prefer": "respond-async"},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    job = made.headers["Location"]
    deadline = time.monotonic() + 60
    while True:
        status = httpx.get(job, headers=portal.auth, timeout=30).json()
        if status["status"] not in ("accepted", "running"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["status"] == "successful", status
    results = httpx.get(f"{job}/results", headers=portal.auth, timeout=30)
    assert results.status_code == 200, results.text
    return dict(results.json())


def test_the_listing_merges_local_and_remote_processes_under_their_prefixes(
    portal: Portal,
) -> None:
    listed = httpx.get(f"{portal.url}/processes", timeout=60).json()["processes"]
    ids = {p["id"] for p in listed}
    assert {"hello-world", "head:hello-world", "remote:hello-world"} <= ids
    described = httpx.get(f"{portal.url}/processes/head:hello-world", timeout=60).json()
    assert described["id"] == "head:hello-world"
    assert set(described["inputs"]) == {"name", "message"}


def test_portal_to_zmq_head_node_to_endpoint(portal: Portal) -> None:
    results = run_async(portal, "head:hello-world", {"name": "Stratus", "message": "via zmq"})
    assert results == {"echo": "Hello Stratus! via zmq"}
    # The head node's job was released once its results were taken.
    assert "Traceback" not in portal.head.log_text()


def test_synchronous_execution_through_the_zmq_provider(portal: Portal) -> None:
    answer = httpx.post(
        f"{portal.url}/processes/head:hello-world/execution",
        json={"inputs": {"name": "sync"}, "response": "document"},
        headers=portal.auth,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"echo": "Hello sync!"}


def test_remote_ogc_provider_routed_by_prefix(portal: Portal) -> None:
    results = run_async(portal, "remote:hello-world", {"name": "remote", "message": "over HTTP"})
    assert results == {"echo": "Hello remote! over HTTP"}


def test_inputs_of_a_remote_process_are_checked_here_against_its_description(
    portal: Portal,
) -> None:
    answer = httpx.post(
        f"{portal.url}/processes/head:hello-world/execution",
        json={"inputs": {"name": 3}},
        headers=portal.auth,
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    assert "name" in answer.json()["detail"]


def test_an_unknown_remote_process_is_no_such_process(portal: Portal) -> None:
    for pid in ("head:nothing-here", "remote:nothing-here"):
        answer = httpx.get(f"{portal.url}/processes/{pid}", timeout=60)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"].endswith("no-such-process")


def test_owslib_executes_a_process_of_the_head_node_through_the_portal(portal: Portal) -> None:
    owslib = pytest.importorskip("owslib.ogcapi.processes")
    client = owslib.Processes(portal.url + "/", headers=portal.auth)
    assert "head:hello-world" in {p["id"] for p in client.processes()}
    answer = client.execute("head:hello-world", {"name": "OWSLib"})
    assert answer == {"echo": "Hello OWSLib!"}


def test_keys_of_a_pair_are_files_and_the_secret_is_private(tmp_path: Path) -> None:
    public, secret = keys(tmp_path, "someone")
    assert "public-key" in public.read_text()
    assert "secret-key" in secret.read_text()
    assert secret.stat().st_mode & 0o077 == 0
