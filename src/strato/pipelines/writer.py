"""Writes the runner's state changes in the background, many in one transaction: a task
starts while its row is written, and a burst of changes (a thousand short tasks) costs a
few transactions, not one each. A change not yet written when the server dies is redone:
a task whose start was not recorded runs again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from strato.pipelines.records import RunRecord, TaskRecord
from strato.pipelines.store import RunStore
from strato.retry import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")

# In a burst of changes (one written less than BURST x this ago), a change waits this long
# for others to join its transaction: a thousand short tasks made a transaction of two
# rows each, and each one's CPU (on the writer's thread, against the event loop for the
# GIL) cost the tasks' rate 10-20%. A change after a quiet spell is written at once.
GATHER = 0.005
BURST = 10


class Writer:
    def __init__(
        self, store: RunStore, backoff: Backoff | None = None, gather: float = GATHER
    ) -> None:
        self.store = store
        self.backoff = backoff or Backoff(0.1, 5.0)
        self.gather = gather
        self._written = float("-inf")  # when the last transaction ended (the loop's clock)
        # One thread: the database sees the changes in the order they were made.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pipeline-writer")
        self._runs: dict[str, RunRecord] = {}
        self._tasks: dict[tuple[str, str], TaskRecord] = {}
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None

    def _start(self) -> None:
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._idle = asyncio.Event()
            self._idle.set()
            self._loop_task = asyncio.create_task(self._loop())

    def save(self, run: RunRecord | None = None, *tasks: TaskRecord) -> None:
        """Record ``run`` and ``tasks`` as they are now (later saves of the same replace
        earlier ones not yet written)."""
        self._start()
        if run is not None:
            self._runs[run.id] = run
        for task in tasks:
            self._tasks[(task.run_id, task.name)] = task
        assert self._wake is not None
        assert self._idle is not None
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Once every change saved so far is written."""
        if self._idle is not None:
            await self._idle.wait()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer's thread, after the changes saved so far."""
        await self.flush()
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _loop(self) -> None:
        assert self._wake is not None
        assert self._idle is not None
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            await self._wake.wait()
            if loop.time() - self._written < self.gather * BURST:
                await asyncio.sleep(self.gather)
            self._wake.clear()
            runs, tasks = self._runs, self._tasks
            self._runs, self._tasks = {}, {}
            if not runs and not tasks:
                self._idle.set()
                continue
            try:
                await loop.run_in_executor(self._thread, self._write, runs, tasks)
            except Exception:  # the database away: keep the changes, try again
                failures += 1
                log.exception("pipeline run state not written; trying again")
                # What was saved meanwhile is newer than what failed.
                self._runs = {**runs, **self._runs}
                self._tasks = {**tasks, **self._tasks}
                await asyncio.sleep(self.backoff.delay(failures))
                self._wake.set()
                continue
            failures = 0
            self._written = loop.time()
            if not self._runs and not self._tasks:
                self._idle.set()

    def _write(self, runs: dict[str, RunRecord], tasks: dict[tuple[str, str], TaskRecord]) -> None:
        # One transaction: a run saved as ended has its tasks' ends written with it.
        self.store.save(list(runs.values()), list(tasks.values()))

    async def close(self) -> None:
        if self._loop_task is not None:
            await self.flush()
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        self._thread.shutdown(wait=True)
