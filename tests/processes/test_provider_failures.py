"""What a user of a portal hears when a provider refuses or fails, end to end on loopback
(the portal -> ZeroMQ head node and -> OGC API node of providers_support): inputs the
remote refuses are a 400 naming the input and the remote's reason, as the same inputs
refused here would be; a process the remote lacks 404 no-such-process; a remote that is
down a gateway error (502) naming the provider, never a traceback nor its address."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes.providers_support import (
    USERS,
    Portal,
    keys,
    portal,
    prepare,
    zmq_head,
)
from tests.served import strato_api

__all__ = ["portal"]  # the fixture, module-scoped here

# A dataset no node serves: every node refuses it when its task opens the data, which no
# description's schema can say beforehand (so the portal's own check lets it through).
MISSING = {"dataset": "nothing-here", "variable": "tas", "method": "mean"}
REASON = "there is no dataset 'nothing-here'"


def execute(
    url: str, auth: dict[str, str], pid: str, inputs: object, **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{url}/processes/{pid}/execution",
        json={"inputs": inputs},
        headers={**auth, **headers},
        timeout=120,
    )


def finished(portal: Portal, job: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        status = dict(httpx.get(job, headers=portal.auth, timeout=30).json())
        if status["status"] not in ("accepted", "running"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def assert_no_traceback(answer: httpx.Response) -> None:
    assert "Traceback" not in answer.text
    assert 'File "' not in answer.text


@pytest.mark.parametrize("pid", ["remote:reduce", "head:reduce"])
def test_inputs_the_remote_refuses_are_a_400_naming_the_input_and_its_reason(
    portal: Portal, pid: str
) -> None:
    local = execute(portal.url, portal.auth, "reduce", MISSING)
    assert local.status_code == 400, local.text
    answer = execute(portal.url, portal.auth, pid, MISSING)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"] == local.json()["type"]
    assert "dataset" in problem["detail"]
    assert REASON in problem["detail"]
    assert_no_traceback(answer)


@pytest.mark.parametrize("pid", ["remote:reduce", "head:reduce"])
def test_an_async_job_the_remote_refuses_fails_with_its_reason(portal: Portal, pid: str) -> None:
    made = execute(portal.url, portal.auth, pid, MISSING, Prefer="respond-async")
    assert made.status_code == 201, made.text
    status = finished(portal, made.headers["Location"])
    assert status["status"] == "failed"
    assert REASON in str(status["message"])
    assert "dataset" in str(status["message"])
    results = httpx.get(f"{made.headers['Location']}/results", headers=portal.auth, timeout=30)
    assert results.status_code == 400, results.text
    assert REASON in results.json()["detail"]


@pytest.mark.parametrize("pid", ["remote:nothing-here", "head:nothing-here"])
def test_executing_a_process_the_remote_lacks_is_no_such_process(portal: Portal, pid: str) -> None:
    for prefer in ({}, {"Prefer": "respond-async"}):
        answer = execute(portal.url, portal.auth, pid, {}, **prefer)
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"].endswith("/no-such-process")
        assert_no_traceback(answer)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fragile:
    """A portal whose head node and remote node the test may stop under it."""

    portal: Portal
    nodes: dict[str, AbstractContextManager[Any]] = field(default_factory=dict)

    def stop(self, which: str) -> None:
        self.nodes.pop(which).__exit__(None, None, None)


@pytest.fixture
def fragile(tmp_path: Path) -> Iterator[Fragile]:
    """A portal to a head node (``head:``) and a remote node (``remote:``) that the test
    may stop, and to providers where nothing listens (``gone:`` over HTTP, ``void:`` over
    ZeroMQ); every provider's requests time out after 3 s."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    _, server_secret = keys(tmp_path / "server", "server")
    portal_public, portal_secret = keys(tmp_path / "portal", "portal")
    (allowed / portal_public.name).write_text(portal_public.read_text())
    prepare(tmp_path / "head", {})
    remote_tokens = prepare(tmp_path / "remote", USERS)
    tokens = prepare(tmp_path / "portal-node", USERS)
    nowhere = free_port()
    nodes: dict[str, AbstractContextManager[Any]] = {
        "head": zmq_head(tmp_path / "head", server_secret, allowed),
        "remote": strato_api(tmp_path / "remote"),
    }
    head = nodes["head"].__enter__()
    try:
        remote = nodes["remote"].__enter__()
    except BaseException:
        nodes["head"].__exit__(None, None, None)
        raise
    zmq_keys = {
        "server_key": str(tmp_path / "server" / "server.key"),
        "client_key": str(portal_secret),
        "timeout": 3,
    }
    providers = [
        {"prefix": "head:", "kind": "zmq", "address": head.address, **zmq_keys},
        {
            "prefix": "remote:",
            "kind": "ogc",
            "url": remote.url + "/processes-api",
            "token": remote_tokens["ann"],
            "timeout": 3,
        },
        {"prefix": "gone:", "kind": "ogc", "url": f"http://127.0.0.1:{nowhere}", "timeout": 3},
        {"prefix": "void:", "kind": "zmq", "address": f"tcp://127.0.0.1:{nowhere}", **zmq_keys},
    ]
    with ExitStack() as stack:
        # Whichever nodes the test left running, stopped at the end (after the portal).
        stack.callback(lambda: [cm.__exit__(None, None, None) for cm in list(nodes.values())])
        api = stack.enter_context(
            strato_api(tmp_path / "portal-node", STRATO_PROCESSES_PROVIDERS=json.dumps(providers))
        )
        yield Fragile(Portal(api, tokens["ann"], head, remote, remote_tokens["ann"]), nodes)


def assert_gateway_problem(answer: httpx.Response, prefix: str, hidden: str) -> None:
    assert answer.status_code in (502, 504), answer.text
    problem = answer.json()
    assert problem["status"] == answer.status_code
    assert f"provider {prefix!r}" in problem["detail"]
    assert hidden not in problem["detail"]  # the remote's address is the operator's
    assert_no_traceback(answer)


def test_a_provider_where_nothing_listens_is_a_gateway_error(fragile: Fragile) -> None:
    portal = fragile.portal
    for pid, prefix in (("gone:hello-world", "gone:"), ("void:hello-world", "void:")):
        answer = execute(portal.url, portal.auth, pid, {"name": "x"})
        assert answer.status_code == 502, answer.text
        assert_gateway_problem(answer, prefix, "127.0.0.1")
        described = httpx.get(f"{portal.url}/processes/{pid}", timeout=60)
        assert_gateway_problem(described, prefix, "127.0.0.1")
    # The listing leaves them out rather than failing.
    listed = httpx.get(f"{portal.url}/processes", timeout=60)
    assert listed.status_code == 200, listed.text
    assert "hello-world" in {p["id"] for p in listed.json()["processes"]}


@pytest.mark.parametrize(
    ("which", "pid"), [("remote", "remote:hello-world"), ("head", "head:hello-world")]
)
def test_a_provider_that_went_down_fails_the_job_as_a_gateway_error(
    fragile: Fragile, which: str, pid: str
) -> None:
    portal = fragile.portal
    # Described (and so kept) while it was up.
    assert httpx.get(f"{portal.url}/processes/{pid}", timeout=60).status_code == 200
    fragile.stop(which)
    answer = execute(portal.url, portal.auth, pid, {"name": "x"})
    assert_gateway_problem(answer, f"{which}:", "127.0.0.1")
    made = execute(portal.url, portal.auth, pid, {"name": "y"}, Prefer="respond-async")
    assert made.status_code == 201, made.text
    status = finished(portal, made.headers["Location"])
    assert status["status"] == "failed"
    assert f"provider '{which}:'" in str(status["message"])
    results = httpx.get(f"{made.headers['Location']}/results", headers=portal.auth, timeout=30)
    assert_gateway_problem(results, f"{which}:", "127.0.0.1")
