"""The jobs capability's settings section: ``[jobs]`` in strato.toml, ``STRATO_JOBS_*``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from strato.settings import Section, Settings


class JobsSettings(Section):
    key: ClassVar[str] = "jobs"

    executor: Literal["local", "celery", "dask"] = Field(
        "local",
        description="What runs jobs: local (a pool of worker processes on this node), celery "
        "(Celery workers started with `strato worker`, on the broker at broker_url) or dask "
        "(the workers of the dask.distributed scheduler at dask_scheduler).",
    )
    # A secret: the URL may carry the broker's password (masked by `strato config show`).
    broker_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="The celery executor's broker: redis://host:port/db or "
        "amqp://user:password@host:port/vhost (RabbitMQ).",
    )
    queue: str = Field(
        "strato.jobs",
        min_length=1,
        description="Celery queue jobs are sent to; `strato worker --queues` consumes it.",
    )
    dask_scheduler: str | None = Field(
        None,
        description="The dask executor's scheduler address (tcp://host:port); default the "
        "top-level dask_scheduler.",
    )
    workers: int | None = Field(
        None, ge=1, description="Worker processes of the local executor; default min(2, CPUs)."
    )
    time_limit: float = Field(
        3600.0, gt=0, description="Seconds a job may run when its submitter names no limit."
    )
    retries: int = Field(
        1,
        ge=0,
        le=20,
        description="Runs again of a job whose worker died or that raised RetryableTaskError "
        "(at least this many; a submitter may ask for more).",
    )
    retry_first: float = Field(0.5, ge=0, description="Seconds before the first retry.")
    retry_cap: float = Field(30.0, ge=0, description="Longest wait between retries.")
    cancel_grace: float = Field(
        5.0,
        ge=0,
        description="Seconds a running job has to stop by itself once cancelled before its "
        "worker process is killed.",
    )
    scheduler: bool = Field(
        True,
        description="Run the scheduler of periodic jobs inside `strato up` (not `strato "
        "api`); `strato scheduler` runs one alone. Several may run on one database: each "
        "due run is submitted once.",
    )
    schedule_rescan: float = Field(
        60.0,
        gt=0,
        description="Longest sleep of a scheduler, in seconds: how late it sees a schedule "
        "added or changed by another process (changes in its own process wake it at once).",
    )
    keep_finished: int = Field(
        1000,
        ge=0,
        description="Finished jobs kept in memory for a minute, so that the status and "
        "results requests that follow a job's end need no database query (0: none).",
    )
    write_delay: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Seconds a job's start or progress may wait to be written with what "
        "follows it (a short job's start and end in one transaction); submits and ends "
        "are written at once.",
    )
    result_dir: Path | None = Field(
        None, description="Where jobs write result files; default <data_dir>/jobs."
    )

    @property
    def pool_size(self) -> int:
        return self.workers or min(2, os.cpu_count() or 1)

    def results_in(self, settings: Settings) -> Path:
        return self.result_dir or settings.data_dir / "jobs"
