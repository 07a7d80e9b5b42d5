"""The worker's side of a run on a remote executor: run the task a ``module:function`` name
names and say what happened as JSON events (``started``, ``progress``, ``done``, ``fail``),
each naming its job and its run. The transport (a broker queue, dask's event stream)
carries them to the server; nothing here is pickled.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from strato import jsonio
from strato.job_engine import RetryableTaskError
from strato.jobs.local.worker import Channel, ServerSettings, WorkerTaskContext, resolve
from strato.jobs.model.jobs import reason_of

Publish = Callable[[dict[str, Any]], None]


class RunChannel(Channel):
    """Progress of a task, as events of its run."""

    def __init__(self, run_id: str, publish: Publish) -> None:  # no pipe: a transport
        self.run_id = run_id
        self.publish = publish

    def send(self, message: dict[str, Any]) -> None:
        self.publish({**message, "run": self.run_id})

    def write(self, line: bytes) -> None:
        self.send(jsonio.loads(line))


def execute(
    message: dict[str, Any],
    publish: Publish,
    cancelled: Collection[str],
    *,
    time_limit_errors: tuple[type[BaseException], ...] = (),
    settings: ServerSettings | None = None,
) -> None:
    """Run one job: ``message`` has ``job``, ``run``, ``task``, ``inputs``, ``dir`` and
    ``limit``; ``cancelled`` holds the ids of jobs the server cancelled (it may change while
    the task runs). ``settings`` are what the task's ``ctx.settings`` reads (by default
    this process's environment's)."""
    job_id, run_id = str(message["job"]), str(message["run"])
    channel = RunChannel(run_id, publish)
    # The pid says which process to look at (and, in tests, which to kill).
    channel.send({"t": "started", "id": job_id, "pid": os.getpid(), "host": socket.gethostname()})
    ctx = WorkerTaskContext(job_id, Path(message["dir"]), channel, cancelled, settings)  # type: ignore[arg-type]
    try:
        outputs = resolve(str(message["task"]))(message["inputs"], ctx)
        if outputs is None:
            outputs = {}
        if not isinstance(outputs, dict):
            raise TypeError(f"a task returns a dict of outputs, not {type(outputs).__name__}")
        try:
            # Checked here, where the task's error can still be told: the transport's
            # encoder may accept more than JSON, or fail out of sight.
            outputs = jsonio.loads(jsonio.dump_bytes(outputs))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"outputs are not JSON: {exc}") from None
        channel.send({"t": "done", "id": job_id, "out": outputs})
    except RetryableTaskError as exc:
        channel.send({"t": "fail", "id": job_id, "reason": reason_of(exc), "retry": True})
    except time_limit_errors:
        reason = f"time limit of {float(message.get('limit') or 0):g} s exceeded"
        channel.send({"t": "fail", "id": job_id, "reason": reason, "retry": False})
    except BaseException as exc:  # a task's SystemExit fails its job, not the worker
        channel.send({"t": "fail", "id": job_id, "reason": reason_of(exc), "retry": False})
