"""The server's side of executors whose workers it does not own (celery, dask).

Each time the engine runs a job it becomes a *run* with an id of its own (the Celery task
id, the dask key): events name their run, and those of a run the server no longer follows
(cancelled, past its time limit, superseded by a retry, sent by a server before a restart)
are dropped, so a late or repeated message never changes a job.

The time limit and the grace of a cancelled job are kept here, by the server's clock,
from the moment the run says it started: the workers' own limits are a backstop. A run
that says it started a second time was delivered again after its worker died: the engine
hears that the run failed retryably and decides by its own policy (a new run after its
back-off, or failed with the reason); the second delivery is stopped.
"""

from __future__ import annotations

import logging
import secrets
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from strato.jobs.executor import Dispatch, ExecutorEvents
from strato.jobs.timers import Timer, Timers

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Run:
    id: str
    job: Dispatch
    started: bool = False
    deadline: Timer | None = None
    # Where it runs, as its worker said (a dask worker's address; empty for Celery).
    where: str = ""


class RemoteExecutor(ABC):
    """The bookkeeping of runs; a subclass sends them and stops them."""

    def __init__(self, *, cancel_grace: float, timers: Timers) -> None:
        self.cancel_grace = cancel_grace
        self.timers = timers
        self._lock = threading.Lock()
        self._by_job: dict[str, Run] = {}
        self._by_run: dict[str, Run] = {}
        self._events: ExecutorEvents | None = None
        self._closing = False

    # --- what a transport does ----------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Connect, and start taking events (calling :meth:`on_event`)."""

    @abstractmethod
    def _send(self, run: Run) -> None:
        """Hand ``run`` to the workers."""

    @abstractmethod
    def _signal_cancel(self, run: Run) -> None:
        """Tell the task of ``run`` that it is cancelled (its ``ctx.cancelled()``)."""

    @abstractmethod
    def _kill(self, run: Run, started: bool) -> None:
        """Stop ``run``: drop it if it waits, kill the process that runs it if ``started``."""

    def _stray(self, run_id: str, message: dict[str, Any]) -> None:  # noqa: B027
        """A run no one follows has started (delivered again, or a former server's); by
        default left alone."""

    @abstractmethod
    def _shutdown(self) -> None:
        """Disconnect."""

    # --- the Executor protocol ----------------------------------------------------------

    def start(self, events: ExecutorEvents) -> None:
        self._events = events
        self._open()

    def run(self, job: Dispatch) -> None:
        run = Run(secrets.token_hex(16), job)
        with self._lock:
            if self._closing:
                return
            old = self._by_job.pop(job.job_id, None)
            if old is not None:
                self._by_run.pop(old.id, None)
            self._by_job[job.job_id] = run
            self._by_run[run.id] = run
        self._send(run)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            run = self._by_job.get(job_id)
            if run is None:
                return
            started = run.started
            if not started:
                self._forget(run)
        if not started:
            self._kill(run, False)
            return
        self._signal_cancel(run)
        self.timers.after(self.cancel_grace, lambda: self._stop(run, None))

    def close(self) -> None:
        with self._lock:
            self._closing = True
            runs = list(self._by_run.values())
            self._by_run.clear()
            self._by_job.clear()
        # As the local executor's close kills its workers' tasks: what ran is run again
        # by the next start, so it must not go on here.
        for run in runs:
            if run.deadline is not None:
                run.deadline.cancel()
            try:
                self._kill(run, run.started)
            except Exception:
                log.exception("job %s: its run could not be stopped", run.job.job_id)
        self._shutdown()

    # --- events -------------------------------------------------------------------------

    def on_event(self, message: dict[str, Any]) -> None:
        """One event from a worker (any thread)."""
        try:
            kind, run_id = str(message["t"]), str(message["run"])
        except (KeyError, TypeError):
            log.warning("an event that is not one: %.200r", message)
            return
        events = self._events
        assert events is not None
        lost: str | None = None
        with self._lock:
            run = self._by_run.get(run_id)
            if run is not None and kind == "started":
                if run.started:
                    lost = "its worker was lost and the job delivered again"
                    self._forget(run)
                else:
                    run.started = True
                    run.where = str(message.get("where", ""))
                    self._arm(run)
            elif run is not None and kind in ("done", "fail", "lost"):
                self._forget(run)
        if run is None:
            if kind == "started":
                self._stray(run_id, message)
            return
        job_id = run.job.job_id
        try:
            if lost is not None:
                log.warning("job %s: %s", job_id, lost)
                self._kill(run, True)
                events.failed(job_id, lost, True)
            elif kind == "started":
                events.started(job_id)
            elif kind == "progress":
                events.progress(job_id, int(message["p"]), str(message["m"]))
            elif kind == "done":
                events.succeeded(job_id, dict(message["out"]))
            elif kind == "fail":
                events.failed(job_id, str(message["reason"]), bool(message["retry"]))
            elif kind == "lost":
                # Its worker process died; the worker may deliver it again: not this run.
                log.warning("job %s: %s", job_id, message["reason"])
                self._kill(run, False)
                events.failed(job_id, str(message["reason"]), True)
        except (KeyError, TypeError, ValueError):
            log.warning("job %s: an event that is not one: %.200r", job_id, message)

    # --- inside -------------------------------------------------------------------------

    def _arm(self, run: Run) -> None:
        """Under the lock: the run's time limit counts from now."""
        limit = run.job.time_limit
        if limit is not None:
            reason = f"time limit of {limit:g} s exceeded"
            run.deadline = self.timers.after(limit, lambda: self._stop(run, reason))

    def _forget(self, run: Run) -> None:
        """Under the lock: ``run`` is no longer followed."""
        if self._by_run.get(run.id) is run:
            del self._by_run[run.id]
        if self._by_job.get(run.job.job_id) is run:
            del self._by_job[run.job.job_id]
        if run.deadline is not None:
            run.deadline.cancel()

    def _stop(self, run: Run, reason: str | None) -> None:
        """Past the grace of a cancel (``reason`` None) or the time limit: kill it if it
        still runs."""
        with self._lock:
            if self._by_run.get(run.id) is not run:
                return
            self._forget(run)
        log.info("job %s: killing its run: %s", run.job.job_id, reason or "cancelled")
        self._kill(run, True)
        if reason is not None and self._events is not None:
            self._events.failed(run.job.job_id, reason, False)
