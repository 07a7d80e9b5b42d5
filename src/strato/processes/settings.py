"""The processes capability's settings section: ``[processes]`` in strato.toml,
``STRATO_PROCESSES_*`` in the environment."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from strato.settings import Section


class ProcessesSettings(Section):
    key: ClassVar[str] = "processes"

    sync_wait_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a synchronous execution waits for its job; past it the answer "
        "is 201 with the job's status, as an asynchronous one.",
    )
    job_time_limit: float | None = Field(
        None, gt=0, description="Seconds a job may run before the engine stops it; none: no limit."
    )
    page_limit: int = Field(100, ge=1, description="Jobs listed per page when none is asked.")
    max_page_limit: int = Field(1000, ge=1, description="Most jobs one page may list.")
    callbacks: bool = Field(
        True,
        description="Send subscriber callbacks (successUri, inProgressUri, failedUri); off, "
        "an execute request naming them is refused.",
    )
    callback_timeout: float = Field(
        10.0, gt=0, description="Seconds one callback request may take, connection included."
    )
    callback_attempts: int = Field(
        3, ge=1, le=10, description="Tries of one callback before it is given up (logged)."
    )
    callback_concurrency: int = Field(
        16, ge=1, description="Callback requests in flight at once from this node."
    )
