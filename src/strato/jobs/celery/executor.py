"""The server's side of the celery executor: runs are sent as Celery tasks to the jobs'
queue, and the workers' events come back on a queue of this server's own, consumed by one
thread (a blocking read: the engine hears of a finish as soon as the broker delivers it).
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import TYPE_CHECKING, Any

from strato.extras import optional_driver
from strato.jobs.celery.app import TASK, cancel_exchange, make_app
from strato.jobs.remote.runs import RemoteExecutor, Run
from strato.retry import Backoff

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection, Queue

    from strato.jobs.timers import Timers

log = logging.getLogger(__name__)


class CeleryExecutor(RemoteExecutor):
    def __init__(self, broker_url: str, queue: str, *, cancel_grace: float, timers: Timers) -> None:
        super().__init__(cancel_grace=cancel_grace, timers=timers)
        self.broker_url = broker_url
        self.queue = queue
        # Several servers may share a broker: each hears only its own runs' events.
        self.reply = f"strato.jobs.events.{secrets.token_hex(8)}"
        self._app: Celery | None = None
        self._stopping = threading.Event()
        self._consumer: threading.Thread | None = None

    @property
    def app(self) -> Celery:
        assert self._app is not None, "the executor is not started"
        return self._app

    def _open(self) -> None:
        self._app = make_app(self.broker_url, self.queue)
        ready = threading.Event()
        self._consumer = threading.Thread(
            target=self._consume, args=(ready,), name="strato-celery-events", daemon=True
        )
        self._consumer.start()
        # Runs are sent only once their events have somewhere to go.
        if not ready.wait(30):
            raise RuntimeError(f"the Celery broker does not answer: {self._safe_url()}")

    def _safe_url(self) -> str:
        with optional_driver():
            from kombu.utils.url import maybe_sanitize_url

        return str(maybe_sanitize_url(self.broker_url))

    def _reply_queue(self) -> Queue:
        from kombu import Queue

        return Queue(self.reply, durable=False, auto_delete=True)

    def _consume(self, ready: threading.Event) -> None:
        from kombu import Connection

        backoff = Backoff(0.1, 5.0)
        failures = 0
        while not self._stopping.is_set():
            try:
                with Connection(self.broker_url) as conn:
                    self._drain(conn, ready)
                    return
            except Exception:
                failures += 1
                log.exception("job events: the broker connection failed; connecting again")
                self._stopping.wait(backoff.delay(failures))

    def _drain(self, conn: Connection, ready: threading.Event) -> None:
        def on_message(body: Any, message: Any) -> None:
            if isinstance(body, dict):
                self.on_event(body)

        with conn.Consumer(
            self._reply_queue(), accept=["json"], no_ack=True, callbacks=[on_message]
        ):
            ready.set()
            while not self._stopping.is_set():
                try:
                    # Returns at each message; the timeout only lets close() be seen.
                    conn.drain_events(timeout=1.0)
                except TimeoutError:
                    continue

    def _send(self, run: Run) -> None:
        job = run.job
        options: dict[str, Any] = {}
        if job.time_limit is not None:
            # The server's own clock stops the run at its limit; Celery's limits are the
            # backstop for a server that is gone.
            options["soft_time_limit"] = job.time_limit + self.cancel_grace
            options["time_limit"] = job.time_limit + 2 * self.cancel_grace + 1
        self.app.send_task(
            TASK,
            kwargs={
                "job": job.job_id,
                "run": run.id,
                "task": job.task,
                "inputs": job.inputs,
                "dir": str(job.result_dir),
                "limit": job.time_limit,
                "reply": self.reply,
            },
            task_id=run.id,
            queue=self.queue,
            ignore_result=True,
            **options,
        )

    def _signal_cancel(self, run: Run) -> None:
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                {"job": run.job.job_id},
                exchange=cancel_exchange(),
                routing_key="",
                serializer="json",
                declare=[cancel_exchange()],
                retry=True,
            )

    def _kill(self, run: Run, started: bool) -> None:
        # A waiting run is dropped when a worker receives it; a running one's process is
        # killed (SIGKILL: a task may ignore SIGTERM).
        if started:
            self.app.control.revoke(run.id, terminate=True, signal="SIGKILL")
        else:
            self.app.control.revoke(run.id)

    def _stray(self, run_id: str, message: dict[str, Any]) -> None:
        log.info("run %s of job %s is no longer followed: stopping it", run_id, message.get("id"))
        self.app.control.revoke(run_id, terminate=True, signal="SIGKILL")

    def _shutdown(self) -> None:
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.join(timeout=5)
