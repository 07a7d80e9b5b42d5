"""The ``jobs`` backend: each attempt of a task is a job of strato's job engine (the jobs
capability's, ``ctx.jobs``), so pipeline tasks run on whatever executor it has (its local
process pool, Celery workers, a Dask cluster) and are listed with the submitter's other
jobs (process ``pipeline-task``). The job runs
:func:`strato.pipelines.backends.job_task.run_attempt`; how the command ended is the
job's output, and a job that could not run it (its worker lost, its executor down) is an
attempt that ended without an exit code, retried as the task's ``retry`` says.
"""

from __future__ import annotations

import asyncio

from strato.errors import NotFound, StratoError
from strato.job_engine import JobEngine, JobStatus
from strato.pipelines.backends.base import BackendError, Ended, Launch
from strato.pipelines.backends.job_task import PROCESS_ID, TASK


class JobsBackend:
    name = "jobs"

    def __init__(self, engine: JobEngine, *, kill_grace: float = 5.0) -> None:
        self.engine = engine
        self.kill_grace = kill_grace

    async def start(self, launch: Launch) -> str:
        inputs = {
            "cmd": launch.cmd,
            "cwd": str(launch.cwd),
            "log": str(launch.log),
            "env": dict(launch.env),
            "stdin": launch.stdin,
            "walltime_s": launch.walltime_s,
            "kill_grace": self.kill_grace,
        }
        try:
            job = await self.engine.submit_async(
                task=TASK, inputs=inputs, owner=launch.owner, process_id=PROCESS_ID
            )
        except StratoError as exc:
            raise BackendError(f"task {launch.task!r} could not be submitted: {exc}") from exc
        return job.id

    async def wait(self, backend_id: str) -> Ended:
        while True:
            try:
                job = await self.engine.wait(backend_id, timeout=3600)
            except NotFound:
                return Ended(None, "its job is gone from the job engine", backend_id)
            if job.done:
                break
        if job.status == JobStatus.dismissed:
            return Ended(None, "cancelled", backend_id)
        if job.status == JobStatus.failed or not job.results:
            return Ended(None, f"its job failed: {job.error or 'no reason given'}", backend_id)
        code = job.results.get("exit_code")
        reason = job.results.get("reason", "")
        return Ended(
            code if isinstance(code, int) else None,
            reason if isinstance(reason, str) else "",
            backend_id,
        )

    async def cancel(self, backend_id: str) -> None:
        try:
            await asyncio.to_thread(self.engine.cancel, backend_id)
        except NotFound:
            pass
        except StratoError as exc:
            raise BackendError(f"job {backend_id} could not be cancelled: {exc}") from exc

    async def adopt(self, backend_id: str) -> bool:
        try:
            await asyncio.to_thread(self.engine.get, backend_id)
        except NotFound:
            return False
        except StratoError as exc:  # the database away: not "gone", so nothing runs twice
            raise BackendError(f"job {backend_id} could not be looked up: {exc}") from exc
        return True

    async def close(self) -> None:
        pass  # the jobs are the engine's; they go on without this server
