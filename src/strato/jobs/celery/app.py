"""The Celery application of the celery executor, and the one task it runs.

Both sides build it from the same settings: the server to send runs and revoke them, the
worker (`strato worker`) to run them. Messages are JSON and nothing else (a pickle on the
broker is refused); a run's message is acknowledged only once it ends (``acks_late``), so
a worker that dies mid-job leaves it to be delivered again (``task_reject_on_worker_lost``),
and each worker process takes one run at a time (prefetch 1). There is no result backend:
the task sends its events (started, progress, done, fail) to the server's own reply
queue, named in the run's message.

A cancelled job hears it through a fanout exchange every worker process listens on (its
``ctx.cancelled()``); one that does not stop is killed by a revoke with ``terminate``.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from typing import TYPE_CHECKING, Any

from strato.extras import optional_driver
from strato.jobs.remote.task import execute

if TYPE_CHECKING:
    from celery import Celery
    from kombu import Connection, Exchange

log = logging.getLogger(__name__)

TASK = "strato.jobs.run"
CANCEL_EXCHANGE = "strato.jobs.cancel"


def make_app(broker_url: str, queue: str) -> Celery:
    with optional_driver():
        from celery.exceptions import SoftTimeLimitExceeded

    app = base_app(broker_url, queue)

    def run(self: Any, **message: Any) -> None:
        cancelled = cancel_listener(app)
        execute(
            message,
            lambda event: reply_to(app, message, event),
            cancelled,
            time_limit_errors=(SoftTimeLimitExceeded,),
        )

    app.task(
        name=TASK, bind=True, Request=lost_run_request(app), acks_late=True, ignore_result=True
    )(run)
    return app


def base_app(broker_url: str, queue: str) -> Celery:
    """A Celery application on strato's terms, with no task yet (the job engine's and
    `strato endpoint serve --celery`'s add theirs)."""
    with optional_driver():
        from celery import Celery

    app = Celery("strato", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
    )
    return app


def lost_run_request(app: Celery) -> type:
    """The Request class of a task whose message names its ``run`` and ``reply`` queue:
    in the worker's main process, a run whose process died says so on its reply queue
    (the server decides, by its own retry policy, whether it runs again) before Celery
    rejects its message back to the broker."""
    with optional_driver():
        from celery.worker.request import Request

    class RunRequest(Request):  # type: ignore[misc]  # Celery's class is untyped
        def on_failure(
            self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
        ) -> None:
            exc = getattr(exc_info.exception, "exc", exc_info.exception)
            revoked = self._already_revoked or self._already_cancelled
            if not revoked and _process_died(exc):
                try:
                    reply_to(app, self.kwargs, {"t": "lost", "reason": _death(exc)})
                except Exception:
                    log.exception("run %s: could not tell the server its process died", self.id)
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    return RunRequest


def reply_to(app: Celery, message: dict[str, Any], event: dict[str, Any]) -> None:
    """Send ``event`` of the run ``message`` describes to the server that sent it."""
    event.setdefault("run", message["run"])
    with app.producer_or_acquire() as producer:
        producer.publish(
            event, exchange="", routing_key=message["reply"], serializer="json", retry=True
        )


def _process_died(exc: BaseException) -> bool:
    from celery.exceptions import WorkerLostError

    return isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt))


def _death(exc: BaseException) -> str:
    # Celery says "Worker exited prematurely: signal 9 (SIGKILL) Job: 0."
    found = re.search(r"\((SIG[A-Z0-9]+)\)", str(exc))
    if found:
        return f"its worker process was killed ({found[1]})"
    return f"its worker process died ({' '.join(str(exc).split())})"


def cancel_exchange() -> Exchange:
    from kombu import Exchange

    return Exchange(CANCEL_EXCHANGE, type="fanout", durable=False, auto_delete=False)


class _Cancels:
    """One per worker process: the ids of cancelled jobs, from the fanout exchange."""

    def __init__(self, app: Celery) -> None:
        self.ids: set[str] = set()
        self.ready = threading.Event()
        self.url = str(app.conf.broker_url)
        threading.Thread(target=self._listen, name="strato-cancels", daemon=True).start()

    def _listen(self) -> None:
        from kombu import Connection, Queue

        name = f"strato.jobs.cancel.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
        queue = Queue(name, cancel_exchange(), durable=False, auto_delete=True, exclusive=True)
        while True:
            try:
                with Connection(self.url) as conn:
                    self._consume(conn, queue)
            except Exception:
                log.exception("cancellations: the broker connection failed; connecting again")
                threading.Event().wait(1.0)

    def _consume(self, conn: Connection, queue: Any) -> None:
        def on_message(body: Any, message: Any) -> None:
            if isinstance(body, dict) and isinstance(body.get("job"), str):
                self.ids.add(body["job"])

        with conn.Consumer(queue, accept=["json"], no_ack=True, callbacks=[on_message]):
            self.ready.set()
            while True:
                try:
                    conn.drain_events(timeout=30)
                except TimeoutError:
                    continue


_cancels: dict[int, _Cancels] = {}
_cancels_lock = threading.Lock()


def cancel_listener(app: Celery) -> set[str]:
    """This process's set of cancelled job ids, listening before the first run starts."""
    with _cancels_lock:
        found = _cancels.get(os.getpid())  # a forked child needs its own
        if found is None:
            found = _cancels[os.getpid()] = _Cancels(app)
    found.ready.wait(10)
    return found.ids
