"""What a capability running jobs offers the others, through the Context.

The processes capability (OGC API - Processes) submits, lists, waits for and dismisses
jobs without knowing which capability runs them or how (a local process pool, Celery
workers, a Dask cluster): the jobs capability hands its engine to the Context as a
:class:`JobEngine`, and others read ``ctx.jobs``.

A task is a module-level function importable by its ``"module:function"`` name::

    def task(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]

Its inputs and the outputs it returns are JSON: they cross process boundaries as JSON
and never as pickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from strato.settings import Settings


class JobStatus(StrEnum):
    """OGC API - Processes statusCode values."""

    accepted = "accepted"
    running = "running"
    successful = "successful"
    failed = "failed"
    dismissed = "dismissed"


# A job in one of these will not change any more (but for being removed).
FINISHED = frozenset({JobStatus.successful, JobStatus.failed, JobStatus.dismissed})


@dataclass(frozen=True)
class JobRecord:
    id: str  # CSPRNG, url-safe
    owner: str  # identity name; "" for anonymous
    process_id: str
    task: str  # "package.module:function" the executor runs
    inputs: dict[str, Any]  # JSON only
    status: JobStatus
    progress: int  # 0-100
    message: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    updated: datetime
    results: dict[str, Any] | None  # JSON outputs (values or {"href": ...} references)
    attempts: int
    error: str | None  # one line, why it failed

    @property
    def done(self) -> bool:
        return self.status in FINISHED


class TaskContext(Protocol):
    """What a task function gets besides its inputs."""

    job_id: str

    @property
    def result_dir(self) -> Path:
        """Where it may write result files (made on first use)."""
        ...

    @property
    def settings(self) -> Settings:
        """The settings of the server that submitted the job (its database, data
        directory, allowed roots), not whatever the worker's environment says: a server
        built in-process from a Settings object hands them to its workers."""
        ...

    def progress(self, percent: int, message: str = "") -> None: ...

    def cancelled(self) -> bool: ...


class RetryableTaskError(Exception):
    """Raised by a task for a failure that may pass (a remote service down): the job is
    run again, with back-off, while it has retries left. Any other exception fails it."""


class JobEngine(Protocol):
    @property
    def result_root(self) -> Path:
        """Where jobs write result files, one directory per job id (``<root>/<id>``): a
        task's file references are relative to its directory, and whoever serves them
        (the processes API) finds them there."""
        ...

    def submit(
        self,
        *,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None = None,
        retries: int = 0,
    ) -> JobRecord:
        """A new job, already visible to :meth:`get` and :meth:`list`."""
        ...

    async def submit_async(
        self,
        *,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None = None,
        retries: int = 0,
    ) -> JobRecord:
        """:meth:`submit` for a coroutine: the event loop is not blocked while the job's
        record is written."""
        ...

    def get(self, job_id: str) -> JobRecord:
        """The job; strato.errors.NotFound if unknown."""
        ...

    def peek(self, job_id: str) -> JobRecord | None:
        """The job if the engine holds it in memory (running, or finished lately), else
        None; never blocks, so an event loop may ask."""
        ...

    def list(
        self,
        *,
        owner: str | None = None,
        process_id: str | None = None,
        status: Sequence[JobStatus] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the last id of the previous page."""
        ...

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """The job as soon as it is finished (pushed, no polling floor), or as it is when
        ``timeout`` seconds have passed."""
        ...

    def cancel(self, job_id: str) -> JobRecord: ...

    def dismiss(self, job_id: str) -> JobRecord:
        """Cancel if running, then remove (results included)."""
        ...

    # A job its caller runs itself (a workflow's coordinator, in the server): listed,
    # waited for, cancelled and dismissed like any, reported on by its caller with the
    # four calls below. It is never handed to an executor, but after a restart (its
    # caller gone) ``task`` runs once, to fail it with the reason.

    def track(
        self, *, task: str, inputs: dict[str, Any], owner: str, process_id: str
    ) -> JobRecord: ...

    def started(self, job_id: str) -> None: ...

    def progress(self, job_id: str, percent: int, message: str) -> None: ...

    def succeeded(self, job_id: str, outputs: dict[str, Any]) -> None: ...

    def failed(self, job_id: str, reason: str, retryable: bool) -> None: ...


@dataclass(frozen=True)
class ScheduleRecord:
    """A periodic job: ``task`` with ``inputs`` submitted at every time ``cron`` matches."""

    id: str
    name: str  # unique: how its owner (a user, a pipeline) refers to it
    cron: str  # five fields: minute hour day-of-month month day-of-week
    timezone: str  # IANA name the cron fields are read in
    task: str
    inputs: dict[str, Any]
    owner: str
    process_id: str
    enabled: bool
    last_run: datetime | None  # the due time of the last run submitted
    next_run: datetime | None  # None while disabled
    last_job_id: str | None
    created: datetime
    updated: datetime


class Schedules(Protocol):
    """Periodic jobs (like Celery beat), offered through ``ctx.schedules`` by the capability
    running jobs. A scheduler submits each due run once, however many schedulers run."""

    def add(
        self,
        *,
        name: str,
        cron: str,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        timezone: str = "UTC",
        enabled: bool = True,
    ) -> ScheduleRecord:
        """strato.errors.InvalidInput for a bad cron field or time zone (named),
        strato.errors.Conflict if ``name`` is taken."""
        ...

    def update(
        self,
        name: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        task: str | None = None,
        inputs: dict[str, Any] | None = None,
        process_id: str | None = None,
        enabled: bool | None = None,
    ) -> ScheduleRecord:
        """Only what is given changes; a new time or enabling counts from now."""
        ...

    def remove(self, name: str) -> None: ...

    def get(self, name: str) -> ScheduleRecord:
        """strato.errors.NotFound if unknown."""
        ...

    def list(
        self, *, owner: str | None = None, process_id: str | None = None
    ) -> list[ScheduleRecord]:
        """By name."""
        ...
