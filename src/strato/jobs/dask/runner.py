"""What a dask worker runs for a job: the task its ``module:function`` name names, with the
run's message as a JSON string. Dask carries the call itself (its own wire between
processes we start); what strato puts in it is JSON. Events go back on the scheduler's
event stream (``Worker.log_event``, in order, pushed to the server's subscription); the
function itself returns nothing."""

from __future__ import annotations

from typing import Any

from strato import jsonio
from strato.jobs.remote.task import execute

# Jobs the server cancelled, told to this worker process by ``cancelled()``.
_cancelled: set[str] = set()


def run(payload: str, topic: str) -> None:
    from distributed import get_worker

    worker = get_worker()

    def publish(event: dict[str, Any]) -> None:
        # Where it runs: the worker the server restarts to stop it.
        event.setdefault("where", worker.address)
        worker.log_event(topic, jsonio.dumps(event))

    execute(jsonio.loads(payload), publish, _cancelled)


def cancelled(job_id: str) -> None:
    """Run on a worker by ``Client.run``: the task of ``job_id`` sees ``ctx.cancelled()``."""
    _cancelled.add(job_id)


def die() -> None:
    """Run on a worker by ``Client.run``: its process ends at once (a task that does not
    stop holds a thread nothing else frees), and its nanny starts a new one. Shortly after
    the call returns, so that the scheduler hears the answer."""
    import os
    import threading

    threading.Timer(0.05, os._exit, args=(1,)).start()
