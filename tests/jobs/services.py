"""What each executor of the job-engine suite needs besides the engine: a `strato worker`
on a queue of its own per engine for Celery (on Redis or RabbitMQ), a dask LocalCluster
of two worker processes for the session."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_service

BROKERS = {
    "celery-redis": (("Redis", "127.0.0.1", 6379), "redis://127.0.0.1:6379/0"),
    "celery-rabbitmq": (("RabbitMQ", "127.0.0.1", 5672), "amqp://guest:guest@127.0.0.1:5672//"),
}


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    # Processes, as a real deployment's workers: a task may kill its own.
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield str(cluster.scheduler_address)


class ExecutorWorkers:
    def __init__(self, executor: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.executor = executor
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.queues: list[str] = []
        self.scheduler = ""
        if executor in BROKERS:
            pytest.importorskip("celery")
            need_service(*BROKERS[executor][0])
        elif executor == "dask":
            self.scheduler = request.getfixturevalue("dask_cluster")

    def settings(self, jobs: dict[str, Any]) -> dict[str, Any]:
        if self.executor in BROKERS:
            return self._celery(jobs)
        if self.executor == "dask":
            return {**jobs, "dask_scheduler": self.scheduler}
        return jobs

    def _celery(self, jobs: dict[str, Any]) -> dict[str, Any]:
        url = BROKERS[self.executor][1]
        queue = f"strato.test.{secrets.token_hex(6)}"
        env = {
            **os.environ,
            "STRATO_DATA_DIR": str(self.tmp_path / "worker"),
            "STRATO_JOBS_EXECUTOR": "celery",
            "STRATO_JOBS_BROKER_URL": url,
            "STRATO_JOBS_QUEUE": queue,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        log = open(self.tmp_path / f"worker-{queue}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "strato",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    str(jobs["workers"]),
                    "--hostname",
                    f"{queue}@test",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its pool's processes go with it at the end, whatever they run.
                start_new_session=True,
            )
        )
        self.queues.append(queue)
        return {**jobs, "executor": "celery", "broker_url": url, "queue": queue}

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if self.queues:
            from kombu import Connection, Queue

            with Connection(BROKERS[self.executor][1]) as conn:
                for name in self.queues:
                    # A queue already gone (auto-deleted, or never declared) is fine.
                    with contextlib.suppress(Exception):
                        Queue(name, channel=conn.channel()).delete()
