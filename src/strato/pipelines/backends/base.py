"""What every backend is: it starts a task's command with its resources and reports how it
ended. The runner owns states, retries and the DAG; a backend only runs commands.

Backends never block the event loop: every method is a coroutine, and blocking work
(``sbatch``, ``squeue``, waiting for a process) happens in threads or subprocesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Launch:
    """One attempt of one task."""

    run_id: str
    task: str
    attempt: int  # 1 for the first
    cmd: str  # run with bash -c ... in ``cwd``
    cwd: Path  # the run's project directory
    log: Path  # stdout and stderr of the attempt go here (a task's own stdout/stderr
    # directives are redirections inside cmd, added by the runner)
    cpus: int = 1
    mem_mb: int = 0
    walltime_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the backend's environment
    stdin: str | None = None
    owner: str = ""  # who submitted the run (the jobs backend's jobs are theirs)


@dataclass(frozen=True)
class Ended:
    """How an attempt ended."""

    exit_code: int | None  # None: it never ran or was killed without a code
    reason: str = ""  # "", "cancelled", "walltime", "killed by signal 9", "node failure", ...
    backend_id: str = ""  # pid, Slurm job id

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.reason


class Backend(Protocol):
    name: str

    async def start(self, launch: Launch) -> str:
        """Start the attempt; its backend id (a pid, a Slurm job id) once it is accepted.
        Raises BackendError when it cannot be."""
        ...

    async def wait(self, backend_id: str) -> Ended:
        """How the attempt ended, once it has (never raises for a task's own failure)."""
        ...

    async def cancel(self, backend_id: str) -> None:
        """Stop the attempt if it runs; ``wait`` then reports ``reason="cancelled"``."""
        ...

    async def adopt(self, backend_id: str) -> bool:
        """After a server restart: whether the attempt ``backend_id`` started by a previous
        server is still known (running or ended) so ``wait`` can follow it."""
        ...

    async def close(self) -> None: ...


class BackendError(Exception):
    """A backend could not do what was asked (not the task's failure): the reason is said."""
