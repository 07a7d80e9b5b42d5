"""What the engine keeps in memory to spare the database: jobs that finished lately
(``jobs.keep_finished``) and a job's start held back to be written with its end
(``jobs.write_delay``). Both are executor-independent: tried on the local executor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from strato.context import Context
from strato.errors import NotFound
from strato.job_engine import JobRecord, JobStatus
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.jobs.settings import JobsSettings
from strato.settings import LogSettings, Settings
from tests.jobs.conftest import PATIENCE, MakeEngine

T = "tests.jobs.tasks:"
pytestmark = pytest.mark.parametrize("executor", ["local"])


def finish(engine: JobService, job_id: str) -> JobRecord:
    return asyncio.run(engine.wait(job_id, PATIENCE))


def test_a_finished_job_is_answered_from_memory_exactly_as_the_database_has_it(
    engine: JobService,
) -> None:
    job = engine.submit(task=T + "echo", inputs={"a": 1}, owner="alice", process_id="echo")
    done = finish(engine, job.id)
    held = engine.peek(job.id)
    assert held is not None
    assert held.status is JobStatus.successful
    assert held == engine.store.get(job.id) == engine.get(job.id) == done


def test_without_keeping_finished_jobs_they_are_read_from_the_database(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(keep_finished=0)
    job = engine.submit(task=T + "echo", inputs={"a": 1}, owner="alice", process_id="echo")
    done = finish(engine, job.id)
    assert engine.peek(job.id) is None
    assert engine.get(job.id) == done


def test_a_dismissed_job_is_gone_from_memory_too(engine: JobService) -> None:
    job = engine.submit(task=T + "echo", inputs={}, owner="", process_id="echo")
    finish(engine, job.id)
    assert engine.peek(job.id) is not None
    engine.dismiss(job.id)
    assert engine.peek(job.id) is None
    with pytest.raises(NotFound):
        engine.get(job.id)


def _count_writes(engine: JobService) -> list[tuple[int, list[JobStatus]]]:
    """Each transaction the engine writes: its new rows and the states it changes."""
    written: list[tuple[int, list[JobStatus]]] = []
    write = engine.store.write

    def counted(rows: Sequence[dict[str, Any]], records: Iterable[JobRecord]) -> None:
        batch = list(records)
        written.append((len(rows), [r.status for r in batch]))
        write(rows, batch)

    engine.store.write = counted  # type: ignore[method-assign]
    return written


def test_a_short_job_costs_two_transactions_its_row_and_its_end(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(write_delay=0.5)
    written = _count_writes(engine)
    job = engine.submit(task=T + "echo", inputs={}, owner="", process_id="echo")
    done = finish(engine, job.id)
    # The start rides with the row (the job runs while its row is written) or with the
    # end (held back by the delay); never a transaction of its own.
    assert len(written) == 2
    assert written[0][0] == 1
    assert written[-1] == (0, [JobStatus.successful])
    stored = engine.store.get(job.id)
    assert stored == done
    assert stored.started is not None
    assert stored.attempts == 1


def test_a_long_jobs_start_is_written_after_the_delay_without_waiting_for_its_end(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(write_delay=0.2)
    job = engine.submit(task=T + "until_cancelled", inputs={}, owner="", process_id="x")
    deadline = time.monotonic() + PATIENCE
    while engine.store.get(job.id).status is not JobStatus.running:
        assert time.monotonic() < deadline, "the start was never written"
        time.sleep(0.05)
    engine.cancel(job.id)
    assert finish(engine, job.id).status is JobStatus.dismissed


def test_a_coroutine_submitting_to_an_engine_not_started_starts_it(
    tmp_path: Path, executor: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        log=LogSettings(access=False),
        jobs=JobsSettings(executor=executor),  # type: ignore[arg-type]
    )
    ctx = Context.open(settings)
    ctx.migrate()
    engine = open_jobs(ctx.sessions, settings)
    try:

        async def submit() -> JobRecord:
            job = await engine.submit_async(task=T + "echo", inputs={}, owner="", process_id="e")
            return await engine.wait(job.id, PATIENCE)

        assert asyncio.run(submit()).status is JobStatus.successful
    finally:
        engine.close()
        ctx.close()
