"""Calls that wait on a provider or the database are made off the event loop: while a
remote process's description is being fetched for an execution (a cold cache, a remote
server that is slow to answer), the node answers its other requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from strato.auth import Scope
from tests.processes.providers_support import prepare
from tests.served import strato_api

HELD = 60  # seconds a held answer waits at most (the test releases it)


@dataclass
class SlowServer:
    """An OGC API - Processes server on loopback that holds its answer to a process's
    description until the test releases it."""

    url: str
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def slow() -> Iterator[SlowServer]:
    state: list[SlowServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = state[0]
            if self.path.rstrip("/").endswith("/processes"):
                self._json(200, {"processes": []})
                return
            server.arrived.set()
            server.release.wait(HELD)
            problem = {
                "type": "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
                "no-such-process",
                "detail": "no process here",
            }
            self._json(404, problem)

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(SlowServer(f"http://127.0.0.1:{httpd.server_address[1]}/processes-api"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        state[0].release.set()
        httpd.shutdown()
        httpd.server_close()


def test_the_node_answers_while_a_remote_description_is_fetched(
    tmp_path: Path, slow: SlowServer
) -> None:
    tokens = prepare(tmp_path / "node", {"ann": {Scope.READ, Scope.PROCESS}})
    providers = [{"prefix": "slow:", "kind": "ogc", "url": slow.url, "timeout": HELD + 30}]
    with strato_api(tmp_path / "node", STRATO_PROCESSES_PROVIDERS=json.dumps(providers)) as api:
        answers: list[httpx.Response] = []

        def execute() -> None:
            answers.append(
                httpx.post(
                    f"{api.url}/processes-api/processes/slow:held/execution",
                    json={"inputs": {}},
                    headers={"Authorization": f"Bearer {tokens['ann']}"},
                    timeout=HELD + 60,
                )
            )

        caller = threading.Thread(target=execute)
        caller.start()
        try:
            assert slow.arrived.wait(HELD), "the node never asked for the description"
            # The description is held: a node blocking its event loop on it would not
            # answer this until it is released (the test would fail on the timeout).
            health = httpx.get(f"{api.url}/healthz", timeout=HELD / 2)
            assert health.status_code == 200
            listed = httpx.get(
                f"{api.url}/processes-api/jobs",
                headers={"Authorization": f"Bearer {tokens['ann']}"},
                timeout=HELD / 2,
            )
            assert listed.status_code == 200
            assert not slow.release.is_set()
        finally:
            slow.release.set()
            caller.join(HELD + 60)
        assert len(answers) == 1
        assert answers[0].status_code == 404, answers[0].text
        assert answers[0].json()["type"].endswith("no-such-process")
