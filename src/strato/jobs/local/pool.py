"""The local executor: a small pool of worker processes of its own, not
``concurrent.futures``, because a job must be stoppable one at a time: past its time limit
or cancelled and not stopping by itself, its worker is killed and replaced, and a worker
that dies (SIGKILL, out of memory) is seen at once as the end of its pipe.

Each worker runs one task at a time (:mod:`strato.jobs.local.worker`); a job goes to an
idle worker straight from the submitting thread, or waits in order for the next worker to
finish. One reader thread per worker turns its JSON lines into engine events.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any

from strato import jsonio
from strato.jobs.executor import Dispatch, ExecutorEvents
from strato.jobs.timers import Timer, Timers

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    to_worker: IO[bytes]
    from_worker: IO[bytes]
    job: Dispatch | None = None
    deadline: Timer | None = None
    # Why the pool killed it, when it did: the reason its job failed.
    killed_for: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: dict[str, Any]) -> bool:
        try:
            with self.lock:
                self.to_worker.write(jsonio.dump_bytes(message) + b"\n")
            return True
        except (BrokenPipeError, ValueError, OSError):
            return False  # it died: its reader thread reports the job

    def kill(self, reason: str) -> None:
        self.killed_for = reason
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


def _died(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"its worker process was killed ({name})"
    return f"its worker process exited (status {returncode})"


class LocalExecutor:
    def __init__(
        self,
        size: int,
        *,
        cancel_grace: float,
        timers: Timers,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """``settings``: the server's, as :func:`strato.settings.settings_to_json` wrote
        them, sent to each worker first; without them workers read their environment."""
        self.size = size
        self.cancel_grace = cancel_grace
        self.timers = timers
        self._settings = settings
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._pending: collections.deque[Dispatch] = collections.deque()
        self._events: ExecutorEvents | None = None
        self._closing = False

    # --- the Executor protocol ----------------------------------------------------------

    def start(self, events: ExecutorEvents) -> None:
        self._events = events
        for _ in range(self.size):
            self._spawn()

    def run(self, job: Dispatch) -> None:
        with self._lock:
            if self._closing:
                return
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                self._pending.append(job)
                return
            self._assign(worker, job)
        self._begin(worker, job)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            for waiting in self._pending:
                if waiting.job_id == job_id:
                    self._pending.remove(waiting)
                    return
            running = [w for w in self._workers if w.job is not None and w.job.job_id == job_id]
        for worker in running:
            worker.send({"t": "cancel", "id": job_id})
            self.timers.after(self.cancel_grace, functools.partial(self._stop, worker, job_id))

    def close(self) -> None:
        with self._lock:
            self._closing = True
            workers = list(self._workers)
            self._pending.clear()
        for worker in workers:
            # Closing its input ends a worker between tasks; one inside a task is killed.
            with contextlib.suppress(OSError):
                worker.to_worker.close()
            if worker.job is not None:
                worker.kill("the server stopped")
        for worker in workers:
            try:
                worker.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()

    # --- workers ------------------------------------------------------------------------

    def _spawn(self) -> None:
        parent_in, child_out = os.pipe()
        child_in, parent_out = os.pipe()
        env = dict(os.environ)
        # The worker imports tasks from where this process imports modules.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "strato.jobs.local.worker", str(child_in), str(child_out)],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(child_in)
        os.close(child_out)
        worker = _Worker(proc, os.fdopen(parent_out, "wb", buffering=0), os.fdopen(parent_in, "rb"))
        if self._settings is not None:
            # Over the pipe rather than in the environment: other users' processes may
            # read a process's environment on some systems, and secrets are in there.
            worker.send({"t": "settings", "settings": self._settings})
        with self._lock:
            self._workers.append(worker)
        threading.Thread(
            target=self._read, args=(worker,), name=f"strato-job-worker-{proc.pid}", daemon=True
        ).start()
        self._next(worker)

    def _assign(self, worker: _Worker, job: Dispatch) -> None:
        """Under the pool's lock: ``worker`` now runs ``job``."""
        worker.job = job
        if job.time_limit is not None:
            limit = job.time_limit
            worker.deadline = self.timers.after(
                limit, lambda: self._stop(worker, job.job_id, f"time limit of {limit:g} s exceeded")
            )

    def _begin(self, worker: _Worker, job: Dispatch) -> None:
        assert self._events is not None
        self._events.started(job.job_id)
        worker.send(
            {
                "t": "run",
                "id": job.job_id,
                "task": job.task,
                "inputs": job.inputs,
                "dir": str(job.result_dir),
            }
        )

    def _next(self, worker: _Worker) -> None:
        """``worker`` is free: give it the next waiting job, or mark it idle."""
        with self._lock:
            if self._closing:
                return
            job = self._pending.popleft() if self._pending else None
            if job is None:
                self._idle.append(worker)
                return
            self._assign(worker, job)
        self._begin(worker, job)

    def _finish(self, worker: _Worker, job_id: str) -> bool:
        """``worker`` reported the end of ``job_id``: True when that is its job."""
        with self._lock:
            if worker.job is None or worker.job.job_id != job_id:
                return False
            worker.job = None
            if worker.deadline is not None:
                worker.deadline.cancel()
                worker.deadline = None
            return True

    def _stop(self, worker: _Worker, job_id: str, reason: str = "cancelled") -> None:
        with self._lock:
            if worker.job is None or worker.job.job_id != job_id:
                return
        log.info("job %s: killing worker %s: %s", job_id, worker.proc.pid, reason)
        worker.kill(reason)

    def _read(self, worker: _Worker) -> None:
        events = self._events
        assert events is not None
        for line in worker.from_worker:
            try:
                message = jsonio.loads(line)
                kind, job_id = message["t"], message["id"]
            except (ValueError, KeyError, TypeError):
                log.warning("worker %s wrote a line that is not a message", worker.proc.pid)
                continue
            if kind == "progress":
                events.progress(job_id, int(message["p"]), str(message["m"]))
            elif kind in ("done", "fail") and self._finish(worker, job_id):
                # The worker takes its next job before the engine hears of this one.
                self._next(worker)
                if kind == "done":
                    events.succeeded(job_id, message["out"])
                else:
                    events.failed(job_id, str(message["reason"]), bool(message["retry"]))
        self._buried(worker)

    def _buried(self, worker: _Worker) -> None:
        """``worker``'s pipe closed: it died or was killed. Its job fails (retryably, unless
        the pool killed it on purpose) and a new worker takes its place."""
        returncode = worker.proc.wait()
        worker.from_worker.close()
        with self._lock:
            self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            job, worker.job = worker.job, None
            if worker.deadline is not None:
                worker.deadline.cancel()
            closing = self._closing
        if job is not None and self._events is not None:
            if worker.killed_for is not None:
                self._events.failed(job.job_id, worker.killed_for, False)
            else:
                log.warning("job %s: %s", job.job_id, _died(returncode))
                self._events.failed(job.job_id, _died(returncode), True)
        if not closing:
            self._spawn()
