"""The job engine under test, one per executor: every executor passes the same suite.

``local``; ``celery-redis`` and ``celery-rabbitmq``, each engine with a `strato worker` of
its own on a queue of its own (as many processes as the engine's ``workers``), and
``dask``, a LocalCluster of two worker processes shared by the session (tests/jobs/
services.py). Those skip when their broker is not running, unless
STRATO_TEST_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.context import Context
from strato.job_engine import JobRecord
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.settings import LogSettings, Settings
from tests.jobs.services import ExecutorWorkers

EXECUTORS = ["local", "celery-redis", "celery-rabbitmq", "dask"]
# How long a test waits for something that takes well under a second: a bound against
# hanging, not a measurement.
PATIENCE = 60.0

MakeEngine = Callable[..., JobService]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_engine(
    tmp_path: Path, executor: str, request: pytest.FixtureRequest
) -> Iterator[MakeEngine]:
    """Engines on one database (SQLite unless ``database_url`` is given), closed after
    the test; a second one on the same database is a restarted server."""
    opened: list[tuple[JobService, Context]] = []
    workers = ExecutorWorkers(executor, request, tmp_path)

    def make(database_url: str | None = None, **jobs: Any) -> JobService:
        jobs = {"executor": executor, "workers": 2, "retry_first": 0.05, **jobs}
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            log=LogSettings(access=False),
            jobs=workers.settings(jobs),
        )
        ctx = Context.open(settings)
        ctx.migrate()
        engine = open_jobs(ctx.sessions, settings)
        engine.start()
        opened.append((engine, ctx))
        return engine

    yield make
    for engine, ctx in opened:
        engine.close()
        ctx.close()
    workers.close()


@pytest.fixture
def engine(make_engine: MakeEngine) -> JobService:
    return make_engine()


def until(engine: JobService, job_id: str, check: Callable[[JobRecord], bool]) -> JobRecord:
    """The job once ``check`` holds for it (by asking again: the tests' side only)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        record = engine.get(job_id)
        if check(record):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"job never got there: {record}")
        time.sleep(0.01)


from tests.jobs.services import dask_cluster  # noqa: E402, F401  (a fixture)
