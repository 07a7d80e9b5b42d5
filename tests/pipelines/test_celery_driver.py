"""Runs driven by Celery workers, as Centro ran them (``pipelines.driver = "celery"``), on
PostgreSQL and on MariaDB with Redis as the broker: the server only writes a run and
sends it; `strato pipelines worker` (a real Celery worker, in a process of its own)
drives it; a worker SIGKILLed mid-run has the run sent again by `strato scheduler` once
its lease runs out, and another worker finishes it without running complete tasks
again; a cancel asked of the server reaches the worker driving the run."""

from __future__ import annotations

import asyncio
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

import pytest
import sqlalchemy as sa

from strato.db import create_engine
from strato.pipelines.celery_driver import Dispatch
from strato.pipelines.records import RunState, TaskState
from strato.pipelines.service import PipelineRuns, open_runs
from strato.pipelines.settings import PipelinesSettings
from strato.pipelines.store import runs as runs_table
from strato.settings import LogSettings, Settings
from tests.conftest import empty_database, need_service
from tests.pipelines.runs_helpers import ALICE, PATIENCE, open_store, task, workflow
from tests.processes.test_celery_provider import delete_queues

pytestmark = pytest.mark.asyncio
BROKER = "redis://127.0.0.1:6379/0"
GATED = "echo $STRATO_PIPELINE_TASK >> ran; while [ ! -e gate ]; do sleep 0.05; done"


@dataclass
class Setup:
    url: str
    root: Path
    queue: str
    env: dict[str, str]

    def options(self) -> PipelinesSettings:
        return PipelinesSettings(
            driver="celery",
            celery_broker=BROKER,
            celery_queue=self.queue,
            project_root=self.root / "projects",
            lease_seconds=1.5,
        )


@pytest.fixture(params=["postgresql", "mariadb"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    need_service("Redis", "127.0.0.1", 6379)
    url: str = request.getfixturevalue(
        f"{request.param.replace('postgresql', 'postgres')}_server_url"
    )
    empty_database(url)
    open_store(url).engine.dispose()  # migrated before anyone starts
    queue = f"strato-test-pipelines-{secrets.token_hex(4)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env |= {
        "STRATO_DATABASE_URL": url,
        "STRATO_DATA_DEMO": "false",
        "STRATO_PIPELINES_DRIVER": "celery",
        "STRATO_PIPELINES_CELERY_BROKER": BROKER,
        "STRATO_PIPELINES_CELERY_QUEUE": queue,
        "STRATO_PIPELINES_LEASE_SECONDS": "1.5",
        "STRATO_PIPELINES_SWEEP_SECONDS": "0.5",
        "STRATO_PIPELINES_PROJECT_ROOT": str(tmp_path / "projects"),
        "STRATO_JOBS_SCHEDULE_RESCAN": "60",
    }
    yield Setup(url, tmp_path, queue, env)
    delete_queues(BROKER, [queue])


@contextmanager
def strato(setup: Setup, name: str, *args: str, ready: str) -> Iterator[subprocess.Popen[str]]:
    """`strato *args` (a worker or the scheduler) until the block ends, handed over once
    its output says ``ready``."""
    log = setup.root / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "strato", "--data-dir", str(setup.root / name), *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=setup.env | {"STRATO_PIPELINES_NODE_NAME": name},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 60
        while ready not in seen:
            line = proc.stdout.readline()
            assert line, f"exit {proc.wait()}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, seen
            seen += line
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def worker(setup: Setup, name: str) -> Iterator[subprocess.Popen[str]]:
    return strato(setup, name, "pipelines", "worker", "--concurrency", "4", ready="  pipelines:")


def server(setup: Setup) -> PipelineRuns:
    """The web server's side: writes runs and sends them to the queue."""
    options = setup.options()
    settings = Settings(data_dir=setup.root / "server", log=LogSettings(access=False))
    return open_runs(create_engine(setup.url), options, settings, dispatch=Dispatch(options))


def lease_node(url: str, run_id: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        node = conn.execute(
            sa.select(runs_table.c.lease_node).where(runs_table.c.id == run_id)
        ).scalar_one()
    engine.dispose()
    return node


async def until(what: str, check: object, seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.05)


async def test_a_worker_drives_the_run_and_another_finishes_it_after_a_kill(
    setup: Setup,
) -> None:
    runs = server(setup)
    await runs.start()
    store = open_store(setup.url)
    flow = workflow(
        [task("a", "echo a >> ran"), task("b", GATED), task("c", "echo c >> ran")],
        {"b": ["a"], "c": ["b"]},
    )
    try:
        with strato(setup, "scheduler", "scheduler", ready="scheduler running"):
            with worker(setup, "w1") as w1:
                run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
                assert run.state == RunState.queued
                project = Path(run.project)

                def b_runs() -> bool:
                    found = {t.name: t for t in store.tasks(run.id)}
                    return found["b"].state == TaskState.running and bool(found["b"].backend_id)

                await until("b running on w1", b_runs)
                assert lease_node(setup.url, run.id) == "w1"
                assert runs._drivers == {}  # the server drives nothing itself
                os.killpg(w1.pid, signal.SIGKILL)
                w1.wait()
            assert store.get(run.id).state == RunState.running
            with worker(setup, "w2"):
                # The scheduler sends the run again once w1's lease has run out.
                await until("w2 takes the run", lambda: lease_node(setup.url, run.id) == "w2")
                (project / "gate").touch()
                await until(
                    "the run ends", lambda: store.get(run.id).state not in {RunState.running}
                )
        done = store.get(run.id)
        assert done.state == RunState.succeeded, done.reason
        tasks = {t.name: t for t in store.tasks(run.id)}
        assert tasks["a"].attempts == 1  # complete before the kill: not run again
        assert (project / "ran").read_text().split()[0] == "a"
        assert (project / "ran").read_text().split().count("a") == 1
        assert (project / "ran").read_text().split()[-1] == "c"
    finally:
        await runs.close()


async def test_a_cancel_asked_of_the_server_reaches_the_worker(setup: Setup) -> None:
    runs = server(setup)
    store = open_store(setup.url)
    try:
        with worker(setup, "w1"):
            run = await runs.submit(
                workflow([task("t", GATED), task("u")], {"u": ["t"]}),
                pipeline="p@1",
                config={},
                submitter="alice",
            )
            await until("t running", lambda: store.tasks(run.id)[0].state == TaskState.running)
            asked = await runs.cancel(ALICE, run.id)
            assert asked.state == RunState.cancelling
            await until("cancelled", lambda: store.get(run.id).state == RunState.cancelled)
            states = {t.name: t.state for t in store.tasks(run.id)}
            assert states == {"t": TaskState.cancelled, "u": TaskState.cancelled}
    finally:
        await runs.close()
