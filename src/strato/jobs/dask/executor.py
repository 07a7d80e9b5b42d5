"""The server's side of the dask executor: each run is a future on the scheduler, whose
events come back on a topic of this server's own (``Client.subscribe_topic``: pushed, no
polling). Cancelling tells the task through the worker (``Client.run``); a task that does
not stop, or runs past its time limit, is stopped by ending its worker process, which its
nanny replaces (dask cannot interrupt a running task). A worker that dies has its
runs rescheduled by the scheduler: the run's second start tells the engine, whose policy decides.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any

from strato import jsonio
from strato.extras import optional_driver
from strato.jobs.dask import runner
from strato.jobs.remote.runs import RemoteExecutor, Run

if TYPE_CHECKING:
    from distributed import Client, Future

    from strato.jobs.timers import Timers

log = logging.getLogger(__name__)


class DaskExecutor(RemoteExecutor):
    def __init__(self, scheduler: str, *, cancel_grace: float, timers: Timers) -> None:
        super().__init__(cancel_grace=cancel_grace, timers=timers)
        self.scheduler = scheduler
        self.topic = f"strato-jobs-{secrets.token_hex(8)}"
        self._client: Client | None = None
        # A future must be held, or dask forgets its task.
        self._futures: dict[str, Future] = {}
        self._stoppers: list[threading.Thread] = []

    @property
    def client(self) -> Client:
        assert self._client is not None, "the executor is not started"
        return self._client

    def _open(self) -> None:
        with optional_driver():
            from distributed import Client

        self._client = Client(self.scheduler, set_as_default=False, timeout=30)
        self._client.subscribe_topic(self.topic, self._on_log_event)

    def _on_log_event(self, event: Any) -> None:
        # (timestamp, message): on the client's event loop; on_event does not block.
        try:
            message = jsonio.loads(event[1])
        except (ValueError, TypeError, IndexError):
            log.warning("job events: not an event: %.200r", event)
            return
        if isinstance(message, dict):
            self.on_event(message)

    def _send(self, run: Run) -> None:
        job = run.job
        payload = jsonio.dumps(
            {
                "job": job.job_id,
                "run": run.id,
                "task": job.task,
                "inputs": job.inputs,
                "dir": str(job.result_dir),
                "limit": job.time_limit,
            }
        )
        future = self.client.submit(
            runner.run, payload, self.topic, key=f"strato-run-{run.id}", pure=False
        )
        with self._lock:
            self._futures[run.id] = future
        future.add_done_callback(lambda f: self._ended(run, f))

    def _ended(self, run: Run, future: Future) -> None:
        with self._lock:
            self._futures.pop(run.id, None)
        if future.status == "error":
            # Its workers died more often than the scheduler allows (KilledWorker), or
            # the runner itself failed: the engine decides whether it runs again.
            error = future.exception()
            self.on_event(
                {
                    "t": "fail",
                    "run": run.id,
                    "reason": f"its workers were lost: {type(error).__name__}: {error}",
                    "retry": True,
                }
            )

    def _signal_cancel(self, run: Run) -> None:
        self._in_background(self._tell_cancelled, run)

    def _tell_cancelled(self, run: Run) -> None:
        workers = [run.where] if run.where else None
        self.client.run(runner.cancelled, run.job.job_id, workers=workers)

    def _kill(self, run: Run, started: bool) -> None:
        # Events arrive on the client's loop, where the client's blocking calls would wait
        # for that same loop: stopping is done on a thread of its own.
        self._in_background(self._stop_run, run, started)

    def _stop_run(self, run: Run, started: bool) -> None:
        with self._lock:
            future = self._futures.pop(run.id, None)
        if future is not None:
            future.cancel()
        if started and run.where:
            # Not restart_workers: a graceful restart waits for the thread it must free.
            log.info("job %s: ending worker %s to stop it", run.job.job_id, run.where)
            self.client.run(runner.die, workers=[run.where], on_error="ignore")

    def _in_background(self, fn: Any, *args: Any) -> None:
        thread = threading.Thread(target=self._safely, args=(fn, *args), daemon=True)
        with self._lock:
            self._stoppers = [t for t in self._stoppers if t.is_alive()]
            self._stoppers.append(thread)
        thread.start()

    @staticmethod
    def _safely(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("dask executor: %s failed", getattr(fn, "__name__", fn))

    def _shutdown(self) -> None:
        with self._lock:
            stoppers = list(self._stoppers)
        for thread in stoppers:
            thread.join(timeout=60)
        # Taken once: an engine closes its executor again after a caller closed it first.
        client, self._client = self._client, None
        if client is not None:
            client.unsubscribe_topic(self.topic)
            client.close()
