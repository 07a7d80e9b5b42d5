"""A worker process of the local executor: ``python -m strato.jobs.local.worker IN OUT``.

It reads JSON lines from file descriptor IN (``settings``, first: the server's own;
``run`` a task, ``cancel`` one) and writes JSON lines to OUT (``progress``, ``done``,
``fail``); nothing is pickled, in either direction. It runs one task at a time in its
main thread, while a reader thread takes cancellations, which the task sees through
``ctx.cancelled()``. When the engine's end of the pipe closes (the server stopped,
however it stopped, SIGKILL included), the worker exits at once, mid-task if need be.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from strato import jsonio
from strato.job_engine import RetryableTaskError
from strato.jobs.model.jobs import one_line, reason_of
from strato.settings import Settings, load_settings, settings_from_json

Task = Callable[[dict[str, Any], Any], Any]


class Channel:
    """The worker's end of the pipes; writes may come from any thread of a task."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        self.write(jsonio.dump_bytes(message) + b"\n")

    def write(self, line: bytes) -> None:
        with self._lock:
            self._out.write(line)


class ServerSettings:
    """The settings tasks run with: the server's, when it sent them (built on first use,
    once per worker: most tasks never ask), else this process's environment's."""

    def __init__(self) -> None:
        self._given: dict[str, Any] | None = None
        self._built: Settings | None = None
        self._lock = threading.Lock()

    def give(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._given, self._built = data, None

    def get(self) -> Settings:
        with self._lock:
            if self._built is None:
                given = self._given
                self._built = load_settings() if given is None else settings_from_json(given)
            return self._built


class WorkerTaskContext:
    """The :class:`strato.job_engine.TaskContext` a task gets in a worker."""

    def __init__(
        self,
        job_id: str,
        result_dir: Path,
        channel: Channel,
        stop: set[str],
        settings: ServerSettings | None = None,
    ) -> None:
        self.job_id = job_id
        self._result_dir = result_dir
        self._channel = channel
        self._stop = stop
        self._settings = settings or _environment

    @property
    def settings(self) -> Settings:
        return self._settings.get()

    @property
    def result_dir(self) -> Path:
        # Made on first use: most jobs write no file.
        self._result_dir.mkdir(parents=True, exist_ok=True)
        return self._result_dir

    def progress(self, percent: int, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        self._channel.send(
            {"t": "progress", "id": self.job_id, "p": percent, "m": one_line(message)}
        )

    def cancelled(self) -> bool:
        return self.job_id in self._stop


_tasks: dict[str, Task] = {}
# What a context made without the server's settings reads (a worker of another executor).
_environment = ServerSettings()


def resolve(name: str) -> Task:
    """The function a ``module:function`` name names (imported once per worker)."""
    found = _tasks.get(name)
    if found is None:
        module, _, attr = name.partition(":")
        found = getattr(importlib.import_module(module), attr)
        if not callable(found):
            raise TypeError(f"{name} is not a function")
        _tasks[name] = found
    return found


def run_one(
    message: dict[str, Any], channel: Channel, stop: set[str], settings: ServerSettings
) -> None:
    job_id = message["id"]
    ctx = WorkerTaskContext(job_id, Path(message["dir"]), channel, stop, settings)
    try:
        outputs = resolve(message["task"])(message["inputs"], ctx)
        if outputs is None:
            outputs = {}
        if not isinstance(outputs, dict):
            raise TypeError(f"a task returns a dict of outputs, not {type(outputs).__name__}")
        try:
            reply = jsonio.dump_bytes({"t": "done", "id": job_id, "out": outputs}) + b"\n"
        except (TypeError, ValueError) as exc:
            raise TypeError(f"outputs are not JSON: {exc}") from None
        channel.write(reply)
    except RetryableTaskError as exc:
        channel.send({"t": "fail", "id": job_id, "reason": reason_of(exc), "retry": True})
    except BaseException as exc:  # a task's SystemExit fails its job, not the worker
        channel.send({"t": "fail", "id": job_id, "reason": reason_of(exc), "retry": False})
    finally:
        stop.discard(job_id)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    channel = Channel(out)
    runs: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    stop: set[str] = set()
    settings = ServerSettings()

    def read() -> None:
        try:
            for line in inp:
                message = jsonio.loads(line)
                if message["t"] == "run":
                    runs.put(message)
                elif message["t"] == "cancel":
                    stop.add(message["id"])
                elif message["t"] == "settings":
                    # Read in order: the settings are in place before the first run is queued.
                    settings.give(message["settings"])
        finally:
            # The server is gone or stopping (it kills a worker inside a task anyway): the
            # task in hand is not finished, whatever it is doing. An orphan that finished
            # it would run a job the next server runs again, into the same result directory.
            os._exit(0)

    threading.Thread(target=read, name="strato-worker-reader", daemon=True).start()
    while True:
        run_one(runs.get(), channel, stop, settings)


def main(argv: list[str]) -> None:
    inp = os.fdopen(int(argv[1]), "rb")
    out = os.fdopen(int(argv[2]), "wb", buffering=0)
    with contextlib.suppress(BrokenPipeError):
        serve(inp, out)
    # Not a normal exit: a task's non-daemon threads must not keep an orphan alive.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
