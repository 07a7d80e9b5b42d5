"""Subscriber callbacks received by a small real HTTP server on loopback."""

from __future__ import annotations

import json
import queue
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.processes.conftest import Node

Received = queue.Queue[tuple[str, Any]]


@pytest.fixture
def subscriber() -> Iterator[tuple[str, Received]]:
    received: Received = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.put((self.path, json.loads(self.rfile.read(length))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def execute_gate(node: Node, url: str, fail: bool) -> tuple[str, Any]:
    gate = node.gates / secrets.token_hex(8)
    body = {
        "inputs": {"path": str(gate), "name": "called", "fail": fail},
        "subscriber": {
            "successUri": f"{url}/success",
            "inProgressUri": f"{url}/progress",
            "failedUri": f"{url}/failed",
        },
    }
    answer = httpx.post(
        f"{node.url}/processes/gate/execution",
        json=body,
        headers={**node.auth("ann"), "Prefer": "respond-async"},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["jobID"], gate


def test_progress_then_success(node: Node, subscriber: tuple[str, Received]) -> None:
    url, received = subscriber
    job_id, gate = execute_gate(node, url, fail=False)
    path, status = received.get(timeout=60)
    assert path == "/progress"
    assert status["jobID"] == job_id
    assert status["status"] in ("accepted", "running")
    gate.touch()
    assert received.get(timeout=60) == ("/success", {"echo": "called"})


def test_failure_is_sent_to_the_failed_uri(node: Node, subscriber: tuple[str, Received]) -> None:
    url, received = subscriber
    job_id, gate = execute_gate(node, url, fail=True)
    assert received.get(timeout=60)[0] == "/progress"
    gate.touch()
    path, status = received.get(timeout=60)
    assert path == "/failed"
    assert (status["jobID"], status["status"]) == (job_id, "failed")
    assert "asked to fail" in status["message"]


def test_a_callback_uri_must_be_http(node: Node) -> None:
    answer = httpx.post(
        f"{node.url}/processes/hello-world/execution",
        json={"inputs": {"name": "x"}, "subscriber": {"successUri": "file:///etc/passwd"}},
        headers=node.auth("ann"),
        timeout=60,
    )
    assert answer.status_code == 400
    assert "successUri" in answer.json()["detail"]
