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
# GIL) cost the tasks' rate 10-20%. The wait is long enough for most short tasks' start
# and end to be one row: at 5 ms, 1,000 no-op tasks wrote 1,450 rows in 230
# transactions; at 50 ms, 1,060 rows in 30, and the writer's CPU per task halved. Nobody
# reads these rows while the run is driven (the service answers from the driver); a
# change after a quiet spell is written at once, and so is everything when someone waits
# for it (flush: a run's end, a submission) or when MAX_PENDING tasks' changes wait.
GATHER = 0.05
BURST = 10
MAX_PENDING = 2000


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
        # Saves counted: flush waits for the saves made before it, not for a quiet moment
        # (under a steady stream of changes there may be none).
        self._saved = 0
        self._done = 0  # every save up to this one is written
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._gathering: asyncio.Future[None] | None = None  # resolved: write at once
        self._loop_task: asyncio.Task[None] | None = None

    def _start(self) -> None:
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._loop_task = asyncio.create_task(self._loop())

    def save(self, run: RunRecord | None = None, *tasks: TaskRecord) -> None:
        """Record ``run`` and ``tasks`` as they are now (later saves of the same replace
        earlier ones not yet written)."""
        self._start()
        if run is not None:
            self._runs[run.id] = run
        for task in tasks:
            self._tasks[(task.run_id, task.name)] = task
        self._saved += 1
        assert self._wake is not None
        self._wake.set()
        if len(self._tasks) >= MAX_PENDING:
            self._hurry()

    async def flush(self) -> None:
        """Once every change saved so far is written."""
        if self._done >= self._saved:
            return
        done = asyncio.get_running_loop().create_future()
        self._flushes.append((self._saved, done))
        self._hurry()
        await done

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer's thread, after the changes saved so far."""
        await self.flush()
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _hurry(self) -> None:
        if self._gathering is not None and not self._gathering.done():
            self._gathering.set_result(None)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """``gather`` seconds for more changes to join, less if hurried."""
        self._gathering = loop.create_future()
        timer = loop.call_later(self.gather, self._hurry)
        try:
            await self._gathering
        finally:
            timer.cancel()
            self._gathering = None

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            await self._wake.wait()
            if loop.time() - self._written < self.gather * BURST and not self._flushes:
                await self._gather(loop)
            self._wake.clear()
            runs, tasks, upto = self._runs, self._tasks, self._saved
            self._runs, self._tasks = {}, {}
            if runs or tasks:
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
            self._done = upto
            self._release()

    def _release(self) -> None:
        waiting = []
        for upto, done in self._flushes:
            if upto <= self._done:
                if not done.done():
                    done.set_result(None)
            else:
                waiting.append((upto, done))
        self._flushes = waiting

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
