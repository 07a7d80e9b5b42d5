"""The CPUs and memory the local backend hands out. A task takes its whole allocation at
once or waits holding nothing, so tasks can never hold parts of what each other needs
(no deadlock); a task asking more than there is at all is refused when it is submitted
(:meth:`Resources.refusal`), never left waiting forever."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from strato.pipelines.model.workflow import TaskSpec


def total_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


class Resources:
    def __init__(self, cpus: int | None = None, mem_mb: int | None = None) -> None:
        self.cpus = cpus or os.cpu_count() or 1
        self.mem_mb = mem_mb or total_memory_mb()
        self.free_cpus = self.cpus
        self.free_mem = self.mem_mb
        self._waiters: list[_Waiter] = []

    def refusal(self, spec: TaskSpec) -> str | None:
        """Why ``spec`` can never run here, if it cannot."""
        if spec.cpus > self.cpus:
            return f"task {spec.name!r} asks for {spec.cpus} CPUs; there are {self.cpus}"
        if spec.mem_mb > self.mem_mb:
            return f"task {spec.name!r} asks for {spec.mem_mb} MB; there are {self.mem_mb} MB"
        return None

    async def acquire(self, cpus: int, mem_mb: int) -> None:
        if self._fits(cpus, mem_mb):
            self._take(cpus, mem_mb)
            return
        waiter = _Waiter(cpus, mem_mb, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.release(cpus, mem_mb)  # granted, then cancelled before it ran
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self, cpus: int, mem_mb: int) -> None:
        self.free_cpus += cpus
        self.free_mem += mem_mb
        # Handed to the waiters in their order, each that fits taking its whole
        # allocation here: a small task may go where the first in line does not fit. Only
        # those that got theirs are woken (waking every waiter to look again made a
        # thousand queued tasks cost a million wake-ups).
        kept: list[_Waiter] = []
        for i, waiter in enumerate(self._waiters):
            if self.free_cpus <= 0:  # every task takes at least one CPU: none fits
                kept.extend(self._waiters[i:])
                break
            if waiter.granted.done():  # cancelled
                continue
            if self._fits(waiter.cpus, waiter.mem_mb):
                self._take(waiter.cpus, waiter.mem_mb)
                waiter.granted.set_result(None)
            else:
                kept.append(waiter)
        self._waiters = kept

    def _fits(self, cpus: int, mem_mb: int) -> bool:
        return cpus <= self.free_cpus and mem_mb <= self.free_mem

    def _take(self, cpus: int, mem_mb: int) -> None:
        self.free_cpus -= cpus
        self.free_mem -= mem_mb


@dataclass
class _Waiter:
    cpus: int
    mem_mb: int
    granted: asyncio.Future[None]
