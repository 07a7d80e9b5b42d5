"""Building the job engine from settings: the executor the settings name, the result
directory, the retry policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strato.errors import InvalidInput
from strato.jobs.engine import JobService
from strato.jobs.settings import JobsSettings
from strato.jobs.store import JobStore
from strato.jobs.timers import Timers
from strato.retry import Backoff
from strato.settings import settings_to_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from strato.jobs.executor import Executor
    from strato.settings import Settings


def make_executor(jobs: JobsSettings, timers: Timers, settings: Settings | None = None) -> Executor:
    """``settings``: the server's, which the local executor's workers then run with."""
    # Only the executor named is imported: Celery's and Dask's drivers are extras.
    if jobs.executor == "local":
        from strato.jobs.local.pool import LocalExecutor

        return LocalExecutor(
            jobs.pool_size,
            cancel_grace=jobs.cancel_grace,
            timers=timers,
            settings=None if settings is None else settings_to_json(settings),
        )
    if jobs.executor == "celery":
        from strato.jobs.celery.executor import CeleryExecutor

        return CeleryExecutor(
            jobs.broker_url.get_secret_value(),
            jobs.queue,
            cancel_grace=jobs.cancel_grace,
            timers=timers,
        )
    if jobs.executor == "dask":
        from strato.jobs.dask.executor import DaskExecutor

        if jobs.dask_scheduler is None:
            raise InvalidInput("jobs.executor dask needs jobs.dask_scheduler (or dask_scheduler)")
        return DaskExecutor(jobs.dask_scheduler, cancel_grace=jobs.cancel_grace, timers=timers)
    raise AssertionError(f"unknown executor {jobs.executor!r}")  # the settings refuse it


def open_jobs(sessions: sessionmaker[Session], settings: Settings) -> JobService:
    """The engine, not started: it starts on first submit or with the web app."""
    jobs = JobsSettings.of(settings)
    if jobs.dask_scheduler is None and settings.dask_scheduler is not None:
        jobs = jobs.model_copy(update={"dask_scheduler": settings.dask_scheduler})
    timers = Timers()
    return JobService(
        JobStore(sessions),
        make_executor(jobs, timers, settings),
        result_root=jobs.results_in(settings),
        timers=timers,
        retries=jobs.retries,
        time_limit=jobs.time_limit,
        backoff=Backoff(jobs.retry_first, jobs.retry_cap),
        keep_finished=jobs.keep_finished,
        write_delay=jobs.write_delay,
    )
