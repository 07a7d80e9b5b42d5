"""The seam between the job engine and what runs tasks.

The engine (:mod:`strato.jobs.engine`) owns job records, retries and waiters; an executor
only runs what it is given and reports back through :class:`ExecutorEvents`, from any
thread. ``local`` (:mod:`strato.jobs.local.pool`) is the one there is; a Celery or a Dask
executor implements the same four methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Dispatch:
    """One run of a job's task."""

    job_id: str
    task: str  # "package.module:function"
    inputs: dict[str, Any]  # JSON
    result_dir: Path
    time_limit: float | None  # seconds; the executor stops the task past it


class ExecutorEvents(Protocol):
    """What an executor tells the engine. Events for a job the engine no longer runs
    (cancelled, dismissed) are ignored, so an executor need not avoid sending them."""

    def started(self, job_id: str) -> None: ...

    def progress(self, job_id: str, percent: int, message: str) -> None: ...

    def succeeded(self, job_id: str, outputs: dict[str, Any]) -> None: ...

    def failed(self, job_id: str, reason: str, retryable: bool) -> None:
        """``reason`` in one line; ``retryable`` when running it again may succeed (its
        worker died, the task raised RetryableTaskError)."""
        ...


class Executor(Protocol):
    def start(self, events: ExecutorEvents) -> None: ...

    def run(self, job: Dispatch) -> None:
        """Run ``job`` when there is room (returns at once)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Drop it if it waits; ask it to stop if it runs, and stop it if it does not."""
        ...

    def close(self) -> None: ...
