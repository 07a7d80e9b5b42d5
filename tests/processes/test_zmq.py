"""The ZeroMQ transport against `strato endpoint serve --zmq` in a subprocess: CURVE
ironhouse (a client key not in the allow-list is refused, logged, and runs nothing),
acknowledged asynchronous jobs whose results wait until released, each client seeing
only its own jobs, and requests that are not ones answered with an error, never a
crash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
import zmq.auth
from sqlalchemy import text

from strato import jsonio
from strato.context import Context
from strato.processes.model.errors import NoSuchJob
from strato.processes.zeromq.client import EndpointClient, Refused
from strato.processes.zeromq.protocol import MAX_REQUEST_BYTES
from strato.settings import LogSettings, Settings
from tests.processes.providers_support import Head, keys, prepare, zmq_head


@dataclass
class Setup:
    head: Head
    root: Path

    def client(self, name: str, timeout: float = 30.0) -> EndpointClient:
        return EndpointClient(
            self.head.address,
            server_key=self.root / "server" / "server.key",
            client_key=self.root / name / f"{name}.key_secret",
            timeout=timeout,
        )

    def jobs_run(self) -> int:
        ctx = Context.open(Settings(data_dir=self.head.data_dir, log=LogSettings(access=False)))
        try:
            with ctx.sessions() as session:
                return int(session.execute(text("SELECT count(*) FROM jobs")).scalar_one())
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("zmq")
    allowed = root / "allowed"
    allowed.mkdir()
    _, server_secret = keys(root / "server", "server")
    for name in ("alice", "bob"):
        public, _ = keys(root / name, name)
        (allowed / public.name).write_text(public.read_text())
    keys(root / "stranger", "stranger")  # never allowed
    prepare(root / "head", {})
    with zmq_head(root / "head", server_secret, allowed) as head:
        yield Setup(head, root)


def test_an_unknown_client_key_is_refused_logged_and_runs_nothing(setup: Setup) -> None:
    stranger, _ = zmq.auth.load_certificate(setup.root / "stranger" / "stranger.key")
    before = setup.jobs_run()
    with setup.client("stranger") as client, pytest.raises(Refused, match="refused"):
        client.request("execute", process="hello-world", inputs={"name": "intruder"})
    log = setup.head.log_text()
    assert f"refused a client with an unknown CURVE key {stranger.decode()}" in log
    assert setup.jobs_run() == before
    assert setup.head.proc.poll() is None


def test_an_execution_is_acknowledged_followed_and_kept_until_released(setup: Setup) -> None:
    with setup.client("alice") as client:
        ack = client.request("execute", process="hello-world", inputs={"name": "zmq"})
        job_id = ack.body["job"]["id"]
        assert ack.body["job"]["status"] in ("accepted", "running", "successful")
    # A late subscriber, on a new connection: the end is still there to be seen.
    with setup.client("alice") as client:
        events: list[dict[str, object]] = []
        status = client.request("subscribe", job=job_id, on_event=events.append).body["job"]
        while status["status"] in ("accepted", "running"):
            for event in client.events(1.0):
                status = event["job"]  # type: ignore[assignment]
        assert status["status"] == "successful", status
        results = client.request("results", job=job_id, inline=True)
        assert results.body["results"] == {"echo": "Hello zmq!"}
        # Asked again: kept until released.
        assert client.request("results", job=job_id).body["results"] == {"echo": "Hello zmq!"}
        client.request("release", job=job_id)
        with pytest.raises(NoSuchJob):
            client.request("status", job=job_id)


def test_a_client_sees_only_its_own_jobs(setup: Setup) -> None:
    with setup.client("alice") as alice, setup.client("bob") as bob:
        job_id = alice.request("execute", process="hello-world", inputs={"name": "a"}).body["job"][
            "id"
        ]
        with pytest.raises(NoSuchJob):
            bob.request("status", job=job_id)
        with pytest.raises(NoSuchJob):
            bob.request("release", job=job_id)
        assert alice.request("status", job=job_id).body["job"]["id"] == job_id


def raw_dealer(setup: Setup, context: zmq.Context[zmq.Socket[bytes]]) -> zmq.Socket[bytes]:
    public, secret = zmq.auth.load_certificate(setup.root / "alice" / "alice.key_secret")
    server, _ = zmq.auth.load_certificate(setup.root / "server" / "server.key")
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server
    sock.connect(setup.head.address)
    return sock


@pytest.mark.parametrize(
    ("frames", "why"),
    [
        ([b"{not json"], "not JSON"),
        ([b"[1, 2]"], "JSON object"),
        ([b'{"op": "format-disk", "rid": 1}'], "op is one of"),
        ([b'{"op": "status", "rid": 1}'], "job is a non-empty string"),
        ([b'{"op": "execute", "rid": 1, "process": "hello-world", "inputs": []}'], "inputs"),
        ([b"x" * (MAX_REQUEST_BYTES + 1)], "at most"),
        ([b"{}", b"{}", b"{}"], "not 3"),
        ([b"\xff\xfe"], "not JSON"),
    ],
)
def test_a_request_that_is_not_one_gets_an_error_reply(
    setup: Setup, frames: list[bytes], why: str
) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = raw_dealer(setup, context)
    try:
        sock.send_multipart(frames)
        reply = jsonio.loads(sock.recv_multipart()[0])
        assert reply["ok"] is False
        assert why in reply["error"]["detail"]
        assert reply["error"]["status"] == 400
        # The server goes on: the next request on the same connection is answered.
        sock.send(b'{"op": "processes", "rid": 7}')
        answer = jsonio.loads(sock.recv_multipart()[0])
        assert answer["ok"] is True
        assert answer["rid"] == 7
        assert "hello-world" in {p["id"] for p in answer["processes"]}
    finally:
        sock.close(0)
        context.term()
    assert setup.head.proc.poll() is None
