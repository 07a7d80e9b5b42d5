"""Pipeline runs as a service, callable from the web app and the command line alike:
submit a rendered workflow, list and read runs (a user sees their own, an administrator
all), their tasks and logs, cancel, retry what failed, resume with a re-rendered
workflow. Runs are driven by asyncio tasks on the server's event loop; the database is
written from a thread (:mod:`strato.pipelines.writer`), so nothing here blocks the loop.

Where runs are driven: by the server that took them (several servers may share one
database: each drives the runs it holds a lease on, :mod:`strato.pipelines.leases`), or,
given ``dispatch``, by Celery workers (:mod:`strato.pipelines.celery_driver`), to which
a submitted, retried or resumed run is sent.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato.auth import Principal, Scope
from strato.db import utcnow
from strato.errors import Conflict, InvalidInput, NotFound
from strato.pipelines import poststeps
from strato.pipelines.backends.base import Backend
from strato.pipelines.leases import Leases, LeaseTerms
from strato.pipelines.model.workflow import Workflow
from strato.pipelines.records import (
    ACTIVE,
    PostSteps,
    RunRecord,
    RunState,
    TaskRecord,
    TaskState,
    workflow_of,
)
from strato.pipelines.resets import reset_closure
from strato.pipelines.resources import Resources
from strato.pipelines.runner import Parts, RunDriver
from strato.pipelines.store import Lease, RunStore
from strato.pipelines.writer import Writer
from strato.retry import Backoff

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from strato.pipelines.settings import PipelinesSettings
    from strato.settings import Settings

log = logging.getLogger(__name__)

LOG_TAIL_MAX = 1024 * 1024


class PipelineRuns:
    def __init__(
        self,
        store: RunStore,
        backend: Backend,
        *,
        projects: Path,
        resources: Resources | None = None,
        backoff: Backoff | None = None,
        archive_to: str | None = None,
        smtp_url: str | None = None,
        mail_from: str = "strato@localhost",
        terms: LeaseTerms | None = None,
        dispatch: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.dispatch = dispatch
        self.projects = projects
        self.writer = Writer(store)
        self.parts = Parts(
            writer=self.writer,
            backend=backend,
            resources=resources,
            backoff=backoff or Backoff(1.0, 60.0),
            archive_to=archive_to,
            smtp_url=smtp_url,
            mail_from=mail_from,
        )
        self._drivers: dict[str, RunDriver] = {}
        self._driving: dict[str, asyncio.Task[RunRecord]] = {}
        self.leases = Leases(
            store,
            terms or LeaseTerms(node=socket.gethostname()),
            driven=self._drivers.keys,
            take=self._take,
            lose=self._let_go,
            cancel=self._cancel_driven,
        )

    # --- the server's life -----------------------------------------------------------

    async def start(self) -> list[str]:
        """Takes up the runs nobody drives (those this node drove before it was started
        again at once, those of a server that stopped once its leases run out), and keeps
        its own leases; the ids taken. Called again after a failure, it leaves the runs
        it already drives as they are. Runs sent to Celery workers are theirs."""
        if self.dispatch is not None:
            return []
        taken = await self.leases.sweep(own_node=True)
        self.leases.start()
        return taken

    async def close(self) -> None:
        """Leaves every active run as it is, given up for the next server or worker."""
        await self.leases.close(release=())
        left = list(self._drivers)
        for run_id in left:
            await self._let_go(run_id)
        await self.writer.close()
        await self.leases.close(release=left)
        await self.parts.backend.close()

    async def _take(self, run_id: str) -> None:
        run = await asyncio.to_thread(self.store.get, run_id)
        tasks = await asyncio.to_thread(self.store.tasks, run_id)
        self._drive(run, tasks)

    async def _let_go(self, run_id: str) -> None:
        driver = self._drivers.get(run_id)
        driving = self._driving.get(run_id)
        # The driving first: with its attempts stopped under it, it would see nothing
        # running and end the run.
        if driving is not None:
            driving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driving
        if driver is not None:
            await driver.close()

    def _cancel_driven(self, run_id: str) -> None:
        driver = self._drivers.get(run_id)
        if driver is not None:
            driver.cancel()

    async def drive(self, run_id: str) -> RunRecord | None:
        """Claims ``run_id`` and drives it to its end (a Celery worker's task); None if
        another driver holds it or it has ended."""
        if run_id in self._drivers or not await self.leases.claim(run_id):
            return None
        self.leases.start()
        await self._take(run_id)
        driving = self._driving[run_id]
        try:
            run = await asyncio.shield(driving)
        except asyncio.CancelledError:
            if driving.cancelled():  # let go: taken by another, or this worker stopping
                return None
            raise
        await self.writer.flush()
        return run

    async def _start(self, run: RunRecord, tasks: builtins.list[TaskRecord]) -> None:
        """A run just queued (submitted, retried, resumed): driven here, or sent to the
        Celery workers."""
        if self.dispatch is None:
            self._drive(run, tasks)
        else:
            await self.dispatch(run.id)

    def _lease(self) -> Lease | None:
        return None if self.dispatch is not None else self.leases.lease()

    def _drive(self, run: RunRecord, tasks: list[TaskRecord]) -> None:
        driver = RunDriver(self.parts, run, tasks)
        self._drivers[run.id] = driver
        driving = asyncio.create_task(driver.drive(), name=f"pipeline-run-{run.id}")
        self._driving[run.id] = driving

        def done(_: asyncio.Task[RunRecord]) -> None:
            if self._drivers.get(run.id) is driver:
                del self._drivers[run.id]
                del self._driving[run.id]
            if not driving.cancelled() and driving.exception() is not None:
                log.error("pipeline run %s stopped", run.id, exc_info=driving.exception())

        driving.add_done_callback(done)

    # --- operations ----------------------------------------------------------------------

    async def submit(
        self,
        workflow: Workflow,
        *,
        pipeline: str,
        config: dict[str, Any],
        submitter: str,
        project: Path | None = None,
        post: PostSteps | None = None,
        path: Sequence[str] = (),
    ) -> RunRecord:
        """A new run of ``workflow`` (rendered from ``pipeline`` with ``config``), queued
        and started. ``post``: its post-run steps; by default it notifies the config's
        ``email``. ``path``: directories put first on its tasks' PATH."""
        self._check(workflow)
        run_id = secrets.token_hex(16)
        if post is None:
            email = config.get("email")
            post = PostSteps(notify=(email,) if isinstance(email, str) and email else ())
        now = utcnow()
        run = RunRecord(
            id=run_id,
            pipeline=pipeline,
            config=config,
            submitter=submitter,
            project=str((project or self.projects / run_id).absolute()),
            state=RunState.queued,
            created=now,
            updated=now,
            post=post,
            path=tuple(str(p) for p in path),
        )
        tasks = _records(run_id, workflow)
        await asyncio.to_thread(Path(run.project).mkdir, parents=True, exist_ok=True)
        await self.writer.call(self.store.insert, run, tasks, self._lease())
        await self._start(run, tasks)
        return run

    def _check(self, workflow: Workflow) -> None:
        resources = self.parts.resources
        if resources is None:
            return
        for spec in workflow.tasks.values():
            refusal = resources.refusal(spec)
            if refusal is not None:
                raise InvalidInput(refusal)

    async def list(
        self,
        viewer: Principal,
        *,
        states: Sequence[RunState] = (),
        limit: int = 100,
        after: str | None = None,
    ) -> list[RunRecord]:
        submitter = None if _admin(viewer) else (viewer.user or "")
        return await asyncio.to_thread(
            self.store.list, submitter=submitter, states=states, limit=limit, after=after
        )

    async def get(self, viewer: Principal, run_id: str) -> RunRecord:
        driver = self._drivers.get(run_id)
        run = driver.run if driver is not None else await asyncio.to_thread(self.store.get, run_id)
        if not _admin(viewer) and run.submitter != viewer.user:
            # Someone else's run is not there for this user, not forbidden: its id says nothing.
            raise NotFound(f"no pipeline run {run_id!r}")
        return run

    async def tasks(self, viewer: Principal, run_id: str) -> builtins.list[TaskRecord]:
        await self.get(viewer, run_id)
        driver = self._drivers.get(run_id)
        if driver is not None:
            return list(driver.tasks.values())
        return await asyncio.to_thread(self.store.tasks, run_id)

    async def log(self, viewer: Principal, run_id: str, task: str, *, tail: int = 64 * 1024) -> str:
        """The end of ``task``'s log (its latest attempt), at most ``tail`` bytes."""
        found = {t.name: t for t in await self.tasks(viewer, run_id)}
        if task not in found:
            raise NotFound(f"pipeline run {run_id!r} has no task {task!r}")
        limit = max(1, min(tail, LOG_TAIL_MAX))
        return await asyncio.to_thread(poststeps.tail, found[task].log, limit)

    async def cancel(self, viewer: Principal, run_id: str) -> RunRecord:
        run = await self.get(viewer, run_id)
        driver = self._drivers.get(run_id)
        if driver is not None:
            driver.cancel()
            return driver.run
        # Driven by another server or a worker (or by nobody, between a stop and its
        # taking up): asked of its driver, which sees it when it renews its lease.
        if run.state in ACTIVE and await asyncio.to_thread(
            self.store.request_cancel, run_id, utcnow()
        ):
            return replace(run, state=RunState.cancelling)
        raise Conflict(f"pipeline run {run_id!r} has ended ({run.state.value})")

    async def retry(self, viewer: Principal, run_id: str) -> RunRecord:
        """Runs again the failed, skipped and cancelled tasks (and those their ``reset``
        names, and what is downstream); complete ones are kept."""
        run = await self._ended(viewer, run_id)
        tasks = await asyncio.to_thread(self.store.tasks, run_id)
        seeds = [t.name for t in tasks if t.state != TaskState.complete]
        again = reset_closure(workflow_of(tasks), seeds)
        tasks = [_reset(t) if t.name in again else t for t in tasks]
        return await self._restart(run, tasks)

    async def _restart(self, run: RunRecord, tasks: builtins.list[TaskRecord]) -> RunRecord:
        run = _restarted(run)
        await self.writer.call(self.store.replace_tasks, run, tasks, self._lease())
        await self._start(run, tasks)
        return run

    async def resume(self, viewer: Principal, run_id: str, workflow: Workflow) -> RunRecord:
        """Runs ``workflow`` (the run's pipeline rendered again) in the run's project,
        keeping each task that completed with the same identity it has now."""
        self._check(workflow)
        run = await self._ended(viewer, run_id)
        old = {t.name: t for t in await asyncio.to_thread(self.store.tasks, run_id)}
        new = _records(run_id, workflow)
        kept = {
            t.name
            for t in new
            if t.name in old
            and old[t.name].state == TaskState.complete
            and old[t.name].identity == t.identity
        }
        again = reset_closure(workflow, [t.name for t in new if t.name not in kept])
        tasks = [
            t
            if t.name in again or t.name not in old
            else replace(old[t.name], position=t.position, spec=t.spec, parents=t.parents)
            for t in new
        ]
        return await self._restart(run, tasks)

    async def _ended(self, viewer: Principal, run_id: str) -> RunRecord:
        run = await self.get(viewer, run_id)
        if run_id in self._drivers or run.state in ACTIVE:
            raise Conflict(f"pipeline run {run_id!r} is {run.state.value}: cancel it first")
        return run

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """The run once its driver is done (its record as it is if none drives it)."""
        driving = self._driving.get(run_id)
        if driving is not None:
            await asyncio.wait_for(asyncio.shield(driving), timeout)
            await self.writer.flush()
        return await asyncio.to_thread(self.store.get, run_id)


def _admin(viewer: Principal) -> bool:
    return Scope.ADMIN in viewer.scopes


def _records(run_id: str, workflow: Workflow) -> list[TaskRecord]:
    return [
        TaskRecord(
            run_id=run_id,
            name=name,
            position=position,
            state=TaskState.pending,
            spec=spec,
            parents=workflow.parents.get(name, frozenset()),
        )
        for position, (name, spec) in enumerate(workflow.tasks.items())
    ]


def _reset(task: TaskRecord) -> TaskRecord:
    return replace(
        task,
        state=TaskState.pending,
        attempts=0,
        exit_code=None,
        reason="",
        started=None,
        finished=None,
        log=None,
        backend_id=None,
    )


def _restarted(run: RunRecord) -> RunRecord:
    # Post-run steps are done again once this round of the run ends.
    return replace(run, state=RunState.queued, reason="", finished=None, updated=utcnow(), steps={})


def open_runs(
    engine: Engine,
    pipelines: PipelinesSettings,
    settings: Settings,
    backend: Backend | None = None,
    *,
    dispatch: Callable[[str], Awaitable[None]] | None = None,
    sweep: bool = True,
) -> PipelineRuns:
    """The run service as ``pipelines`` (the section of ``settings``) configure it, not
    started (:meth:`PipelineRuns.start` takes up the active runs). ``backend``: the one
    the settings name unless given. ``dispatch``: runs are sent to Celery workers rather
    than driven here; ``sweep``: this driver looks for runs nobody drives."""
    resources = None
    if pipelines.backend in ("local", "jobs"):  # tasks on this machine's CPUs and memory
        resources = Resources(pipelines.cpus, pipelines.mem_mb)
    if backend is None:
        if pipelines.backend == "jobs":
            raise InvalidInput("pipelines.backend 'jobs' needs the job engine (ctx.jobs)")
        if pipelines.backend == "slurm":
            from strato.pipelines.backends.slurm import SlurmBackend

            backend = SlurmBackend(settings=pipelines)
        else:
            from strato.pipelines.backends.local import LocalBackend

            backend = LocalBackend(kill_grace=pipelines.kill_grace)
    terms = LeaseTerms(
        node=pipelines.node_name or socket.gethostname(),
        seconds=pipelines.lease_seconds,
        sweep=sweep,
    )
    return PipelineRuns(
        RunStore(engine),
        backend,
        projects=pipelines.projects_in(settings),
        resources=resources,
        backoff=Backoff(pipelines.retry_first, pipelines.retry_cap),
        archive_to=None if pipelines.archive_to is None else str(pipelines.archive_to),
        smtp_url=pipelines.smtp_url,
        mail_from=pipelines.mail_from,
        terms=terms,
        dispatch=dispatch,
    )
