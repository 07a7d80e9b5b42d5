"""The ``jobs`` backend: a run's tasks as jobs of strato's job engine, on its local
process pool and on Celery workers (Redis): commands run in the project directory with
their environment, stdin and log; an exit code fails the task and its retry runs
again; a cancel stops the command; a walltime ends it; each attempt is a job of the
run's submitter (process ``pipeline-task``); a job with hostile inputs fails naming the
input and starts nothing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from strato.errors import InvalidInput
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.pipelines.backends.job_task import PROCESS_ID, TASK, run_attempt
from strato.pipelines.backends.jobs import JobsBackend
from strato.pipelines.records import RunState, TaskState
from strato.pipelines.resources import Resources
from strato.pipelines.service import PipelineRuns
from strato.retry import Backoff
from tests.jobs.conftest import MakeEngine, make_engine
from tests.pipelines.runs_helpers import ALICE, PATIENCE, open_store, task, workflow

pytestmark = pytest.mark.asyncio
__all__ = ["make_engine"]


@pytest.fixture(params=["local", "celery-redis"])
def executor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jobs(make_engine: MakeEngine) -> JobService:
    return make_engine(workers=2, retries=0)


def runs_on(jobs: JobService, tmp_path: Path) -> PipelineRuns:
    return PipelineRuns(
        open_store(f"sqlite:///{tmp_path / 'runs.db'}"),
        JobsBackend(jobs, kill_grace=0.5),
        projects=tmp_path / "projects",
        resources=Resources(cpus=4, mem_mb=4096),
        backoff=Backoff(0.05, 0.2),
    )


async def test_tasks_run_as_jobs_of_the_submitter(jobs: JobService, tmp_path: Path) -> None:
    runs = runs_on(jobs, tmp_path)
    try:
        flow = workflow(
            [
                task("env", 'echo "$STRATO_PIPELINE_TASK in $(basename $PWD)" > env.txt'),
                task("stdin", "cat > given.txt", stdin="from the template\n"),
                task("flaky", "echo try >> tries; [ $(wc -l < tries) -ge 2 ]", retry=1),
                task("last", "cat env.txt given.txt; echo done"),
            ],
            {"last": ["env", "stdin", "flaky"]},
        )
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded, done.reason
        project = Path(run.project)
        assert (project / "env.txt").read_text() == f"env in {project.name}\n"
        assert (project / "given.txt").read_text() == "from the template\n"
        tasks = {t.name: t for t in await runs.tasks(ALICE, run.id)}
        assert tasks["flaky"].attempts == 2
        log = await runs.log(ALICE, run.id, "last")
        assert log == f"env in {project.name}\nfrom the template\ndone\n"
        # Each attempt was a job of alice's, and is listed with her jobs.
        listed = jobs.list(owner="alice", process_id=PROCESS_ID)
        assert len(listed) == 5
        assert {j.status for j in listed} == {JobStatus.successful}
        assert tasks["last"].backend_id in {j.id for j in listed}
    finally:
        await runs.close()


async def test_a_cancel_stops_the_command_and_a_walltime_ends_it(
    jobs: JobService, tmp_path: Path
) -> None:
    runs = runs_on(jobs, tmp_path)
    try:
        long = await runs.submit(
            workflow([task("long", "echo $$ > pid; exec sleep 60")]),
            pipeline="p@1",
            config={},
            submitter="alice",
        )
        pid_file = Path(long.project) / "pid"
        deadline = time.monotonic() + PATIENCE
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await runs.cancel(ALICE, long.id)
        cancelled = await runs.wait(long.id, PATIENCE)
        assert cancelled.state == RunState.cancelled
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + PATIENCE
        while Path(f"/proc/{pid}").exists() and "\nState:\tZ" not in _status(pid):
            assert time.monotonic() < deadline, "the command outlived its cancel"
            await asyncio.sleep(0.05)

        timed = await runs.submit(
            workflow([task("slow", "sleep 60", walltime_s=0.5)]),
            pipeline="p@1",
            config={},
            submitter="alice",
        )
        ended = await runs.wait(timed.id, PATIENCE)
        assert ended.state == RunState.failed
        [slow] = await runs.tasks(ALICE, timed.id)
        assert slow.state == TaskState.failed
        assert slow.reason == "walltime"
    finally:
        await runs.close()


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return "\nState:\tZ"


async def test_hostile_inputs_fail_the_job_naming_the_input(
    jobs: JobService, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    for inputs, named in [
        ({"cmd": f"touch {marker}", "cwd": "relative", "log": str(tmp_path / "l")}, "cwd"),
        ({"cmd": 7, "cwd": str(tmp_path), "log": str(tmp_path / "l")}, "cmd"),
        (
            {
                "cmd": f"touch {marker}",
                "cwd": str(tmp_path),
                "log": str(tmp_path / "l"),
                "env": {"A=B": "x"},
            },
            "env",
        ),
        (
            {
                "cmd": f"touch {marker}",
                "cwd": str(tmp_path),
                "log": str(tmp_path / "l"),
                "walltime_s": "soon",
            },
            "walltime_s",
        ),
    ]:
        job = await jobs.submit_async(task=TASK, inputs=inputs, owner="x", process_id=PROCESS_ID)
        failed = await jobs.wait(job.id, PATIENCE)
        assert failed.status == JobStatus.failed
        assert named in (failed.error or "")
    assert not marker.exists()
    with pytest.raises(InvalidInput, match="inputs"):
        run_attempt([], None)  # type: ignore[arg-type]
    assert os.environ.get("STRATO_PIPELINE_TASK") is None
