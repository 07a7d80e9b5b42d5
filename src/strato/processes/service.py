"""What the processes capability does, callable from the web app and the command line:
describe processes, run them as jobs of the engine ``ctx.jobs`` offers, and show each
user their own jobs (an administrator every job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strato.auth import Principal, Scope
from strato.errors import InvalidInput, NotFound
from strato.job_engine import JobEngine, JobRecord, JobStatus
from strato.processes.model.errors import NoSuchJob, ResultNotReady, job_failure
from strato.processes.model.validation import validate_inputs
from strato.processes.registry import Registered, Registry
from strato.processes.settings import ProcessesSettings


def owner_of(who: Principal) -> str:
    return who.user or ""


def sees_all(who: Principal) -> bool:
    return Scope.ADMIN in who.scopes


@dataclass(frozen=True)
class JobQuery:
    process_ids: Sequence[str] = ()
    status: Sequence[JobStatus] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    after: str | None = None


class ProcessService:
    def __init__(self, registry: Registry, jobs: JobEngine, settings: ProcessesSettings) -> None:
        self.registry = registry
        self.jobs = jobs
        self.settings = settings

    def process(self, process_id: str) -> Registered:
        return self.registry.get(process_id)

    def submit(self, process_id: str, inputs: dict[str, Any], who: Principal) -> JobRecord:
        """A new job of the process, its inputs checked first (InvalidInput naming each
        bad one); visible at once."""
        registered = self.registry.get(process_id)
        values = validate_inputs(registered.description, inputs)
        if registered.route is not None:
            # Run by a job of this node that forwards it to its provider.
            from strato.processes.providers.forward import wrap

            values = wrap(*registered.route, values)
        return self.jobs.submit(
            task=registered.task,
            inputs=values,
            owner=owner_of(who),
            process_id=registered.id,
            time_limit=self.settings.job_time_limit,
        )

    async def submit_async(
        self, registered: Registered, inputs: dict[str, Any], who: Principal
    ) -> JobRecord:
        """:meth:`submit` on the event loop, for a process this node runs itself
        (``registry.local``): a provider's may have to be asked, in a thread."""
        if registered.route is not None:
            raise AssertionError(f"{registered.id!r} is a provider's: submit it in a thread")
        return await self.jobs.submit_async(
            task=registered.task,
            inputs=validate_inputs(registered.description, inputs),
            owner=owner_of(who),
            process_id=registered.id,
            time_limit=self.settings.job_time_limit,
        )

    async def wait(self, job: JobRecord, timeout: float | None) -> JobRecord:
        return await self.jobs.wait(job.id, timeout=timeout)

    def job(self, job_id: str, who: Principal) -> JobRecord:
        """The job, if ``who`` may see it: another user's job is no job (404, not 403, so
        that ids of others' jobs cannot be confirmed)."""
        try:
            job = self.jobs.get(job_id)
        except NotFound:
            raise NoSuchJob(f"no job {job_id!r}") from None
        return _visible(job, who)

    def job_in_memory(self, job_id: str, who: Principal) -> JobRecord | None:
        """:meth:`job` if the engine holds the job in memory (running or finished lately),
        else None; never blocks, for an event loop."""
        job = self.jobs.peek(job_id)
        return None if job is None else _visible(job, who)

    def list_jobs(self, who: Principal, query: JobQuery) -> list[JobRecord]:
        if query.limit < 1:
            raise InvalidInput("limit must be at least 1")
        owner = None if sees_all(who) else owner_of(who)
        process_ids = list(query.process_ids)
        if len(process_ids) > 1:
            # The engine filters one process id; several are merged newest first.
            found = [
                job for pid in process_ids for job in self._list(owner, pid, query, query.limit)
            ]
            found.sort(key=lambda job: (job.created, job.id), reverse=True)
            return found[: query.limit]
        return self._list(owner, process_ids[0] if process_ids else None, query, query.limit)

    def _list(
        self, owner: str | None, process_id: str | None, query: JobQuery, limit: int
    ) -> list[JobRecord]:
        return self.jobs.list(
            owner=owner,
            process_id=process_id,
            status=query.status,
            since=query.since,
            until=query.until,
            limit=limit,
            after=query.after,
        )

    def finished_results(self, job_id: str, who: Principal) -> JobRecord:
        """The job once it succeeded; ResultNotReady while it runs; when it failed, the
        task's own 4xx error if that was why (InvalidInput, ...), else ProcessFailed."""
        return results_of(self.job(job_id, who))

    def dismiss(self, job_id: str, who: Principal) -> JobRecord:
        self.job(job_id, who)
        try:
            return self.jobs.dismiss(job_id)
        except NotFound:  # dismissed by someone else in between
            raise NoSuchJob(f"no job {job_id!r}") from None


def _visible(job: JobRecord, who: Principal) -> JobRecord:
    if not sees_all(who) and job.owner != owner_of(who):
        raise NoSuchJob(f"no job {job.id!r}")
    return job


def results_of(job: JobRecord) -> JobRecord:
    """The job if it succeeded; else why its results cannot be had."""
    if job.status in (JobStatus.accepted, JobStatus.running):
        raise ResultNotReady(f"job {job.id!r} is {job.status.value}; its results are not ready")
    if job.status is JobStatus.failed:
        raise job_failure(job.id, job.error)
    if job.status is JobStatus.dismissed:
        raise NoSuchJob(f"job {job.id!r} was dismissed")
    return job
