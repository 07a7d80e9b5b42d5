"""Building the job engine from settings: the executor the settings name, the result
directory, the retry policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strato.jobs.engine import JobService
from strato.jobs.settings import JobsSettings
from strato.jobs.store import JobStore
from strato.jobs.timers import Timers
from strato.retry import Backoff

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from strato.jobs.executor import Executor
    from strato.settings import Settings


def make_executor(jobs: JobsSettings, timers: Timers) -> Executor:
    # Only the executor named is imported: Celery's and Dask's drivers are extras.
    if jobs.executor == "local":
        from strato.jobs.local.pool import LocalExecutor

        return LocalExecutor(jobs.pool_size, cancel_grace=jobs.cancel_grace, timers=timers)
    raise AssertionError(f"unknown executor {jobs.executor!r}")  # the settings refuse it


def open_jobs(sessions: sessionmaker[Session], settings: Settings) -> JobService:
    """The engine, not started: it starts on first submit or with the web app."""
    jobs = JobsSettings.of(settings)
    timers = Timers()
    return JobService(
        JobStore(sessions),
        make_executor(jobs, timers),
        result_root=jobs.results_in(settings),
        timers=timers,
        retries=jobs.retries,
        time_limit=jobs.time_limit,
        backoff=Backoff(jobs.retry_first, jobs.retry_cap),
    )
