"""A Celery queue as a process provider, end to end on loopback and on a real broker
(Redis, RabbitMQ): `strato endpoint serve --celery BROKER --queue Q` in a subprocess
hosts processes a portal node (`strato api`) routes to by prefix; executed through the
portal's own OGC API as a client would, synchronously and asynchronously, with the
remote progress seen, a dismiss reaching the task on the worker, result files carried
back, bad inputs a 400 naming the input, and a queue no worker serves or a broker that
is down a gateway error (504, 502) naming the provider, never its address."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.errors import InvalidInput
from strato.processes.model.errors import RemoteUnreachable
from strato.processes.providers.celery_queue import CeleryProvider
from strato.processes.settings import ProviderSettings
from strato.settings import LogSettings, Settings
from tests.conftest import need_service
from tests.processes.builtin_support import TaskCtx
from tests.processes.celery_test_processes import pattern
from tests.processes.providers_support import USERS, prepare
from tests.served import Api, run_strato, strato_api

HERE = Path(__file__).parent
BROKERS = {
    "redis": (("Redis", "127.0.0.1", 6379), "redis://127.0.0.1:6379/0"),
    "rabbitmq": (("RabbitMQ", "127.0.0.1", 5672), "amqp://guest:guest@127.0.0.1:5672//"),
}
ENTRY_POINTS = """\
[strato.processes]
waiter = celery_test_processes:waiter
blob = celery_test_processes:blob_endpoint
"""
EXC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


def install_plugin(site: Path) -> None:
    """The test processes as an installed distribution, for the worker alone."""
    info = site / "celery_test_processes-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: celery-test-processes\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "celery_test_processes.py").write_text((HERE / "celery_test_processes.py").read_text())


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def celery_worker(data_dir: Path, site: Path, broker: str, queue: str) -> Iterator[Worker]:
    """`strato endpoint serve --celery` until the block ends, handed over once it says
    it consumes the queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {
        "STRATO_DATA_DEMO": "false",
        "PYTHONPATH": os.pathsep.join([str(site), *(p for p in sys.path if p)]),
    }
    log = data_dir.parent / f"{data_dir.name}-celery.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strato",
            "--data-dir",
            str(data_dir),
            "endpoint",
            "serve",
            "--celery",
            broker,
            "--queue",
            queue,
            "--concurrency",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
        # Its pool's processes go with it at the end, whatever they run.
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "  celery:" not in banner:
            line = proc.stdout.readline()
            assert line, f"exit {proc.wait()}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, banner
            banner += line
        assert queue in banner
        yield Worker(proc, log)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def delete_queues(broker: str, names: list[str]) -> None:
    """The test's queues off the shared broker (their expired requests with them)."""
    if broker.startswith("redis://"):
        import redis

        # kombu leaves a Redis list it holds no binding of (a queue only published to).
        client = redis.Redis.from_url(broker)
        for name in names:
            client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
        client.close()
        return
    from kombu import Connection, Queue

    with Connection(broker) as conn:
        for name in names:
            with suppress(Exception):  # gone already, or never declared
                Queue(name, channel=conn.channel()).delete()


@dataclass
class Setup:
    api: Api
    token: str
    worker: Worker
    broker: str
    queue: str
    gates: Path

    @property
    def url(self) -> str:
        return self.api.url + "/processes-api"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module", params=sorted(BROKERS))
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    pytest.importorskip("celery")
    service, broker = BROKERS[request.param]
    need_service(*service)
    root = tmp_path_factory.mktemp(f"celery-{request.param}")
    site = root / "site"
    install_plugin(site)
    gates = root / "gates"
    gates.mkdir()
    queue = f"strato.test.endpoint.{secrets.token_hex(6)}"
    nobody = f"strato.test.nobody.{secrets.token_hex(6)}"
    prepare(root / "worker", {})
    tokens = prepare(root / "portal", USERS)
    providers = [
        {"prefix": "cq:", "kind": "celery", "broker_url": broker, "queue": queue},
        # A queue no worker takes, and a broker that is not there.
        {"prefix": "idle:", "kind": "celery", "broker_url": broker, "queue": nobody, "timeout": 1},
        {
            "prefix": "down:",
            "kind": "celery",
            "broker_url": "redis://127.0.0.1:1/0",
            "queue": queue,
            "timeout": 1,
        },
    ]
    try:
        with (
            celery_worker(root / "worker", site, broker, queue) as worker,
            strato_api(root / "portal", STRATO_PROCESSES_PROVIDERS=json.dumps(providers)) as api,
        ):
            yield Setup(api, tokens["ann"], worker, broker, queue, gates)
    finally:
        delete_queues(broker, [queue, nobody])


def execute_async(setup: Setup, process_id: str, inputs: dict[str, Any]) -> str:
    made = httpx.post(
        f"{setup.url}/processes/{process_id}/execution",
        json={"inputs": inputs},
        headers={**setup.auth, "Prefer": "respond-async"},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    return str(made.headers["Location"])


def status_of(setup: Setup, job: str) -> dict[str, Any]:
    answer = httpx.get(job, headers=setup.auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_until(setup: Setup, job: str, done: Any, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = status_of(setup, job)
        if done(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def finished(status: dict[str, Any]) -> bool:
    return status["status"] not in ("accepted", "running")


def test_the_queue_s_processes_are_listed_and_described_under_the_prefix(setup: Setup) -> None:
    listed = httpx.get(f"{setup.url}/processes", timeout=60)
    assert listed.status_code == 200, listed.text
    ids = {p["id"] for p in listed.json()["processes"]}
    assert {"cq:hello-world", "cq:waiter", "cq:blob", "hello-world"} <= ids
    # The node itself does not have the worker's processes.
    assert "waiter" not in ids
    described = httpx.get(f"{setup.url}/processes/cq:waiter", timeout=60).json()
    assert described["id"] == "cq:waiter"
    assert set(described["inputs"]) == {"path", "name"}


def test_synchronous_execution_on_a_celery_worker(setup: Setup) -> None:
    answer = httpx.post(
        f"{setup.url}/processes/cq:hello-world/execution",
        json={"inputs": {"name": "Celery", "message": "from a queue"}, "response": "document"},
        headers=setup.auth,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"echo": "Hello Celery! from a queue"}


def test_asynchronous_execution_shows_the_worker_s_progress(setup: Setup) -> None:
    gate = setup.gates / secrets.token_hex(8)
    job = execute_async(setup, "cq:waiter", {"path": str(gate), "name": "ann"})
    running = wait_until(setup, job, lambda s: s.get("progress") == 10 or finished(s))
    assert running["status"] == "running", running
    assert running["message"] == "ann waits at the gate"
    early = httpx.get(f"{job}/results", headers=setup.auth, timeout=30)
    assert early.status_code == 404
    assert early.json()["type"] == EXC + "result-not-ready"
    gate.touch()
    done = wait_until(setup, job, finished)
    assert done["status"] == "successful", done
    results = httpx.get(f"{job}/results", headers=setup.auth, timeout=30)
    assert results.json() == {"echo": "ann"}


def test_dismissing_the_job_cancels_its_run_on_the_worker(setup: Setup) -> None:
    gate = setup.gates / secrets.token_hex(8)
    job = execute_async(setup, "cq:waiter", {"path": str(gate), "name": "bob"})
    wait_until(setup, job, lambda s: s.get("progress") == 10 or finished(s))
    answer = httpx.delete(job, headers=setup.auth, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "dismissed"
    # The task on the worker heard it and stopped (it never saw its gate open).
    marker = Path(f"{gate}.cancelled")
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, setup.worker.log_text()[-2000:]
        time.sleep(0.05)
    assert httpx.get(job, headers=setup.auth, timeout=30).status_code == 404
    # Its worker process is free again: two runs at once finish (concurrency 2).
    jobs = [execute_async(setup, "cq:hello-world", {"name": str(i)}) for i in range(2)]
    for i, other in enumerate(jobs):
        assert wait_until(setup, other, finished, 30)["status"] == "successful"
        assert httpx.get(f"{other}/results", headers=setup.auth).json() == {"echo": f"Hello {i}!"}


def test_a_worker_process_killed_mid_run_is_retried_by_the_node(setup: Setup) -> None:
    gate = setup.gates / secrets.token_hex(8)
    job = execute_async(setup, "cq:waiter", {"path": str(gate), "name": "kill"})
    wait_until(setup, job, lambda s: s.get("progress") == 10 or finished(s))
    pid = Path(f"{gate}.pid")
    first = int(pid.read_text())
    pid.unlink()
    os.kill(first, signal.SIGKILL)
    # The node hears the worker lost its process and runs the job again (jobs.retries),
    # on another worker process: the second run waits at the same gate.
    deadline = time.monotonic() + 60
    while not pid.exists():
        assert time.monotonic() < deadline, status_of(setup, job)
        time.sleep(0.05)
    assert int(pid.read_text()) != first
    gate.touch()
    done = wait_until(setup, job, finished)
    assert done["status"] == "successful", done
    assert httpx.get(f"{job}/results", headers=setup.auth, timeout=30).json() == {"echo": "kill"}


def test_a_workflow_step_on_the_queue_feeds_a_step_on_the_node(setup: Setup) -> None:
    queued = {"step": "q", "output": "echo"}
    workflow = {
        "steps": {
            "q": {"process": "cq:hello-world", "inputs": {"name": "queue", "message": "first"}},
            "n": {"process": "hello-world", "inputs": {"name": "node", "message": queued}},
        },
        "outputs": {"queued": queued, "node": {"step": "n", "output": "echo"}},
    }
    job = execute_async(setup, "workflow", workflow)
    done = wait_until(setup, job, finished)
    assert done["status"] == "successful", done
    steps = {step["name"]: step["processID"] for step in done["steps"]}
    assert steps == {"q": "cq:hello-world", "n": "hello-world"}
    results = httpx.get(f"{job}/results", headers=setup.auth, timeout=30).json()
    assert results == {"queued": "Hello queue! first", "node": "Hello node! Hello queue! first"}


def test_a_result_file_comes_back_whole_and_is_served_by_the_node(setup: Setup) -> None:
    size = (5 << 20) // 2  # three chunks, the last one partial
    job = execute_async(setup, "cq:blob", {"size": size})
    assert wait_until(setup, job, finished)["status"] == "successful"
    results = httpx.get(f"{job}/results", headers=setup.auth, timeout=30).json()
    href = results["result"]["href"]
    assert href.startswith(setup.url + "/jobs/")
    assert results["result"]["type"] == "application/x-netcdf"
    got = httpx.get(href, headers=setup.auth, timeout=60)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(pattern(size)).hexdigest()


def test_bad_inputs_are_a_400_naming_the_input(setup: Setup) -> None:
    # Checked on the node, against the description the worker gave.
    answer = httpx.post(
        f"{setup.url}/processes/cq:hello-world/execution",
        json={"inputs": {"name": 3}},
        headers=setup.auth,
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    assert "name" in answer.json()["detail"]
    # Refused by the task itself on the worker: the job's results are that 400.
    answer = httpx.post(
        f"{setup.url}/processes/cq:blob/execution",
        json={"inputs": {"size": 1 << 30}},
        headers=setup.auth,
        timeout=60,
    )
    assert answer.status_code == 400, answer.text
    assert "input 'size'" in answer.json()["detail"]


def test_the_worker_checks_inputs_again_whoever_sends_them(setup: Setup, tmp_path: Path) -> None:
    provider = CeleryProvider(
        ProviderSettings(prefix="cq:", kind="celery", broker_url=setup.broker, queue=setup.queue)
    )
    ctx = TaskCtx(tmp_path, Settings(data_dir=tmp_path, log=LogSettings(access=False)))
    try:
        with pytest.raises(InvalidInput, match=r"\$\.inputs\.name"):
            provider.run("hello-world", {"name": ["not", "a", "name"]}, ctx)
    finally:
        provider.close()


def test_an_unknown_process_of_the_queue_is_no_such_process(setup: Setup) -> None:
    answer = httpx.get(f"{setup.url}/processes/cq:nothing-here", timeout=60)
    assert answer.status_code == 404, answer.text
    assert answer.json()["type"] == EXC + "no-such-process"


def assert_gateway_problem(answer: httpx.Response, status: int, prefix: str) -> None:
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["status"] == status
    assert f"provider {prefix!r}" in problem["detail"]
    assert "127.0.0.1" not in problem["detail"]  # the broker's address is the operator's
    assert "Traceback" not in answer.text


def test_a_queue_without_worker_or_a_broker_down_is_a_gateway_error(setup: Setup) -> None:
    # The broker took the request and no worker answered: 504, saying so.
    idle = httpx.get(f"{setup.url}/processes/idle:hello-world", timeout=60)
    assert_gateway_problem(idle, 504, "idle:")
    assert "no worker" in idle.json()["detail"]
    # No broker there: 502, for a description and an execution alike.
    down = httpx.get(f"{setup.url}/processes/down:hello-world", timeout=60)
    assert_gateway_problem(down, 502, "down:")
    assert "cannot be reached" in down.json()["detail"]
    answer = httpx.post(
        f"{setup.url}/processes/down:hello-world/execution",
        json={"inputs": {"name": "x"}},
        headers=setup.auth,
        timeout=60,
    )
    assert_gateway_problem(answer, 502, "down:")
    # The listing goes on without them.
    listed = httpx.get(f"{setup.url}/processes", timeout=60)
    assert listed.status_code == 200
    ids = {p["id"] for p in listed.json()["processes"]}
    assert "cq:hello-world" in ids
    assert not any(i.startswith(("idle:", "down:")) for i in ids)
    log = setup.api.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert "no worker answered on queue 'strato.test.nobody." in log


def test_a_broker_down_when_the_job_starts_fails_it_as_a_gateway_error(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    provider = CeleryProvider(
        ProviderSettings(
            prefix="down:", kind="celery", broker_url="redis://127.0.0.1:1/0", queue="q"
        )
    )
    ctx = TaskCtx(tmp_path, Settings(data_dir=tmp_path, log=LogSettings(access=False)))
    # Retried by the job engine (nothing was sent), then the job fails with it: 502.
    with pytest.raises(RemoteUnreachable, match="provider 'down:' cannot be reached"):
        provider.run("hello-world", {"name": "x"}, ctx)
    provider.close()


def test_serve_celery_needs_a_queue_and_runs_alone() -> None:
    done = run_strato("endpoint", "serve", "--celery", "redis://127.0.0.1:6379/0")
    assert done.returncode == 2
    assert "--queue" in done.stderr
    done = run_strato(
        "endpoint", "serve", "--celery", "redis://127.0.0.1:6379/0", "--queue", "q", "--zmq", "x"
    )
    assert done.returncode == 2
    assert "not with --zmq" in done.stderr
