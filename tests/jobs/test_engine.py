"""The job engine suite every executor passes (parametrised in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from strato.errors import InvalidInput, NotFound
from strato.job_engine import JobEngine, JobRecord, JobStatus
from strato.jobs.engine import JobService
from tests.jobs.conftest import PATIENCE, MakeEngine, until

T = "tests.jobs.tasks:"


def gone(pid: int) -> None:
    """``pid`` ends (killed by the executor), within the tests' patience."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} is still alive")
        time.sleep(0.02)


def finish(engine: JobEngine, job_id: str) -> object:
    return asyncio.run(engine.wait(job_id, PATIENCE))


def test_the_engine_is_a_job_engine(engine: JobService) -> None:
    assert isinstance(engine, JobService)
    offered: JobEngine = engine  # what ctx.jobs promises, checked by mypy
    assert offered is engine


def test_a_submitted_job_is_visible_at_once_and_succeeds_with_its_outputs(
    engine: JobService,
) -> None:
    job = engine.submit(task=T + "echo", inputs={"a": [1, 2]}, owner="alice", process_id="echo")
    assert job.status == JobStatus.accepted
    assert engine.get(job.id).id == job.id
    assert job.id in [j.id for j in engine.list()]
    assert job.id in [j.id for j in engine.store.list()]  # in the database, not only here

    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.successful
    assert done.results == {"echo": {"a": [1, 2]}, "job": job.id}
    assert (done.progress, done.attempts, done.error) == (100, 1, None)
    assert done.started is not None
    assert done.finished is not None
    # What wait() answered is what is written.
    assert engine.store.get(job.id) == done


def test_a_job_submitted_from_a_coroutine_is_written_before_it_is_answered(
    engine: JobService,
) -> None:
    async def submit_and_wait() -> tuple[JobRecord, JobRecord, JobRecord]:
        job = await engine.submit_async(
            task=T + "echo", inputs={"b": 2}, owner="bob", process_id="echo"
        )
        stored = engine.store.get(job.id)  # written before submit_async returned
        return job, stored, await engine.wait(job.id, PATIENCE)

    job, stored, done = asyncio.run(submit_and_wait())
    assert (stored.id, stored.owner, stored.inputs) == (job.id, "bob", {"b": 2})
    assert done.status == JobStatus.successful
    assert done.results == {"echo": {"b": 2}, "job": job.id}


def test_a_failing_task_fails_its_job_with_a_one_line_reason(engine: JobService) -> None:
    job = engine.submit(task=T + "fail", inputs={}, owner="", process_id="fail")
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.failed
    assert done.error == "ValueError: the input is bad and this second line is not the reason's"
    assert done.attempts == 1  # a task's own error is not retried
    assert done.results is None


def test_outputs_that_are_not_json_fail_the_job(engine: JobService) -> None:
    job = engine.submit(task=T + "not_json", inputs={}, owner="", process_id="x")
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.failed
    assert done.error is not None
    assert "not JSON" in done.error


def test_an_unknown_task_fails_its_job_naming_it(engine: JobService) -> None:
    job = engine.submit(task="tests.jobs.tasks:nowhere", inputs={}, owner="", process_id="x")
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.failed
    assert done.error is not None
    assert "nowhere" in done.error


def test_a_task_name_that_is_not_one_is_refused(engine: JobService) -> None:
    with pytest.raises(InvalidInput, match="task"):
        engine.submit(task="os.system", inputs={}, owner="", process_id="x")


def test_an_unknown_job_is_not_found(engine: JobService) -> None:
    for call in (engine.get, engine.cancel, engine.dismiss):
        with pytest.raises(NotFound):
            call("no-such-job")


def test_result_files_go_to_the_jobs_own_directory(engine: JobService) -> None:
    job = engine.submit(task=T + "write_file", inputs={"text": "hi"}, owner="", process_id="x")
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.results is not None
    path = Path(done.results["href"])
    assert path.read_text() == "hi"
    assert path.parent == engine.result_root / job.id


def test_progress_and_messages_are_seen_while_the_job_runs_and_cancel_reaches_it(
    engine: JobService, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    job = engine.submit(
        task=T + "until_cancelled", inputs={"marker": str(marker)}, owner="", process_id="x"
    )
    running = until(engine, job.id, lambda r: r.progress == 40)
    assert running.status == JobStatus.running
    assert running.message == "halfway there"

    cancelled = engine.cancel(job.id)
    assert cancelled.status == JobStatus.dismissed
    assert cancelled.message == "cancelled"
    # The task itself saw the cancellation (it is not only a mark in the database).
    until(engine, job.id, lambda r: marker.exists())
    final = asyncio.run(engine.wait(job.id, PATIENCE))
    assert final.status == JobStatus.dismissed
    assert engine.store.get(job.id).status == JobStatus.dismissed


def test_a_running_job_that_ignores_cancellation_is_stopped_and_its_worker_replaced(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(cancel_grace=0.2, workers=1)
    job = engine.submit(task=T + "deaf", inputs={}, owner="", process_id="x")
    pid = int(until(engine, job.id, lambda r: r.message.startswith("pid")).message.split()[1])
    engine.cancel(job.id)
    # The worker is gone, and the pool's one new worker runs the next job.
    after = engine.submit(task=T + "echo", inputs={}, owner="", process_id="x")
    assert asyncio.run(engine.wait(after.id, PATIENCE)).status == JobStatus.successful
    # (Where workers are not the server's, another may have run it meanwhile.)
    gone(pid)
    assert engine.get(job.id).status == JobStatus.dismissed


def test_cancelling_a_finished_job_changes_nothing(engine: JobService) -> None:
    job = engine.submit(task=T + "echo", inputs={}, owner="", process_id="x")
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert engine.cancel(job.id) == done


def test_dismiss_cancels_and_removes_the_job_and_its_files(engine: JobService) -> None:
    job = engine.submit(task=T + "write_file", inputs={"text": "x"}, owner="", process_id="x")
    asyncio.run(engine.wait(job.id, PATIENCE))
    assert (engine.result_root / job.id).exists()
    assert engine.dismiss(job.id).status == JobStatus.dismissed
    with pytest.raises(NotFound):
        engine.get(job.id)
    assert job.id not in [j.id for j in engine.list()]
    assert not (engine.result_root / job.id).exists()

    running = engine.submit(task=T + "until_cancelled", inputs={}, owner="", process_id="x")
    until(engine, running.id, lambda r: r.status == JobStatus.running)
    assert engine.dismiss(running.id).status == JobStatus.dismissed
    with pytest.raises(NotFound):
        engine.store.get(running.id)


def test_a_job_past_its_time_limit_is_stopped_and_failed_saying_so(engine: JobService) -> None:
    job = engine.submit(task=T + "deaf", inputs={}, owner="", process_id="x", time_limit=0.5)
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.failed
    assert done.error == "time limit of 0.5 s exceeded"
    assert done.attempts == 1  # not retried: it would run out of time again


def test_a_worker_killed_mid_job_has_its_job_retried(make_engine: MakeEngine) -> None:
    engine = make_engine(retries=1)
    job = engine.submit(task=T + "die_once", inputs={}, owner="", process_id="x")
    pid = int(until(engine, job.id, lambda r: r.message.startswith("pid")).message.split()[1])
    os.kill(pid, signal.SIGKILL)
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.successful
    assert done.results == {"attempt": "again"}
    assert done.attempts == 2


def test_a_worker_killed_mid_job_without_retries_left_fails_it_with_the_reason(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(retries=0)
    job = engine.submit(task=T + "die_once", inputs={}, owner="", process_id="x")
    pid = int(until(engine, job.id, lambda r: r.message.startswith("pid")).message.split()[1])
    os.kill(pid, signal.SIGKILL)
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert done.status == JobStatus.failed
    # Dask's scheduler tells no exit status: the job's second start says its worker died.
    assert done.error in (
        "its worker process was killed (SIGKILL)",
        "its worker was lost and the job delivered again",
    )
    # The pool has its workers back.
    after = engine.submit(task=T + "echo", inputs={}, owner="", process_id="x")
    assert asyncio.run(engine.wait(after.id, PATIENCE)).status == JobStatus.successful


def test_a_retryable_failure_is_retried_with_backoff(make_engine: MakeEngine) -> None:
    engine = make_engine(retries=0)
    job = engine.submit(task=T + "flaky", inputs={}, owner="", process_id="x", retries=2)
    done = asyncio.run(engine.wait(job.id, PATIENCE))
    assert (done.status, done.results, done.attempts) == (JobStatus.successful, {"ok": True}, 2)


def test_a_restarted_server_requeues_what_was_running_and_runs_what_waited(
    make_engine: MakeEngine,
) -> None:
    first = make_engine(retries=1, workers=1)
    ran = first.submit(task=T + "die_once", inputs={}, owner="", process_id="x")
    waited = first.submit(task=T + "echo", inputs={"n": 1}, owner="", process_id="x")
    until(first, ran.id, lambda r: r.message.startswith("pid"))
    first.close()
    assert first.store.get(ran.id).status == JobStatus.running
    # It waited for the one worker, unless the executor's workers are more than the
    # engine's (a dask cluster's), where it ran.
    assert first.store.get(waited.id).status in (JobStatus.accepted, JobStatus.successful)

    second = make_engine(retries=1, workers=1)
    again = asyncio.run(second.wait(ran.id, PATIENCE))
    assert (again.status, again.results) == (JobStatus.successful, {"attempt": "again"})
    assert asyncio.run(second.wait(waited.id, PATIENCE)).status == JobStatus.successful


def test_a_restarted_server_fails_what_was_running_without_retries_left(
    make_engine: MakeEngine,
) -> None:
    first = make_engine(retries=0)
    ran = first.submit(task=T + "deaf", inputs={}, owner="", process_id="x")
    until(first, ran.id, lambda r: r.message.startswith("pid"))
    first.close()

    second = make_engine(retries=0)
    failed = second.get(ran.id)
    assert failed.status == JobStatus.failed
    assert failed.error == "the server stopped while it ran (attempt 1 of 1)"
    assert not [j for j in second.list() if j.status == JobStatus.running]


class CountingEngine:
    """Counts the engine's database reads while a wait is pending."""

    def __init__(self, engine: JobService) -> None:
        self.reads = 0
        store = engine.store
        get, listed = store.get, store.list

        def counted_get(job_id: str) -> JobRecord:
            self.reads += 1
            return get(job_id)

        def counted_list(**kw: Any) -> list[JobRecord]:
            self.reads += 1
            return listed(**kw)

        store.get = counted_get  # type: ignore[method-assign]
        store.list = counted_list  # type: ignore[method-assign]


def test_wait_is_woken_by_the_finish_not_by_polling(engine: JobService, tmp_path: Path) -> None:
    job = engine.submit(task=T + "until_cancelled", inputs={}, owner="", process_id="x")
    until(engine, job.id, lambda r: r.status == JobStatus.running)
    counter = CountingEngine(engine)

    async def scenario() -> list[JobStatus]:
        waiters = [asyncio.ensure_future(engine.wait(job.id)) for _ in range(5)]
        await asyncio.sleep(0.3)  # a poller would have read the job many times by now
        assert not any(w.done() for w in waiters)
        assert counter.reads == 0
        await asyncio.get_running_loop().run_in_executor(None, engine.cancel, job.id)
        return [(await w).status for w in waiters]

    assert asyncio.run(scenario()) == [JobStatus.dismissed] * 5
    assert counter.reads == 0


def test_wait_returns_the_job_as_it_is_when_the_timeout_passes(engine: JobService) -> None:
    job = engine.submit(task=T + "until_cancelled", inputs={}, owner="", process_id="x")
    assert asyncio.run(engine.wait(job.id, 0.2)).status in (JobStatus.accepted, JobStatus.running)
    engine.cancel(job.id)


def test_the_list_is_newest_first_filtered_and_paged(engine: JobService) -> None:
    ids = [
        engine.submit(task=T + "echo", inputs={}, owner=owner, process_id=process).id
        for owner, process in [("a", "p"), ("b", "p"), ("a", "q"), ("a", "p"), ("b", "q")]
    ]
    for job_id in ids:
        asyncio.run(engine.wait(job_id, PATIENCE))
    newest_first = list(reversed(ids))
    assert [j.id for j in engine.list()] == newest_first
    assert [j.id for j in engine.list(owner="a")] == [ids[3], ids[2], ids[0]]
    assert [j.id for j in engine.list(owner="a", process_id="p")] == [ids[3], ids[0]]
    assert engine.list(status=[JobStatus.failed]) == []
    assert len(engine.list(status=[JobStatus.successful, JobStatus.failed])) == 5
    page = engine.list(limit=2)
    assert [j.id for j in page] == newest_first[:2]
    page2 = engine.list(limit=2, after=page[-1].id)
    assert [j.id for j in page2] == newest_first[2:4]
    created = engine.get(ids[0]).created
    assert len(engine.list(since=created, until=created)) >= 1
