"""The CPUs and memory the local backend hands out. A task takes its whole allocation at
once or waits holding nothing, so tasks can never hold parts of what each other needs
(no deadlock); a task asking more than there is at all is refused when it is submitted
(:meth:`Resources.refusal`), never left waiting forever."""

from __future__ import annotations

import asyncio
import os

from strato.pipelines.model.workflow import TaskSpec


def total_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


class Resources:
    def __init__(self, cpus: int | None = None, mem_mb: int | None = None) -> None:
        self.cpus = cpus or os.cpu_count() or 1
        self.mem_mb = mem_mb or total_memory_mb()
        self.free_cpus = self.cpus
        self.free_mem = self.mem_mb
        self._waiters: list[asyncio.Future[None]] = []

    def refusal(self, spec: TaskSpec) -> str | None:
        """Why ``spec`` can never run here, if it cannot."""
        if spec.cpus > self.cpus:
            return f"task {spec.name!r} asks for {spec.cpus} CPUs; there are {self.cpus}"
        if spec.mem_mb > self.mem_mb:
            return f"task {spec.name!r} asks for {spec.mem_mb} MB; there are {self.mem_mb} MB"
        return None

    async def acquire(self, cpus: int, mem_mb: int) -> None:
        while cpus > self.free_cpus or mem_mb > self.free_mem:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.free_cpus -= cpus
        self.free_mem -= mem_mb

    def release(self, cpus: int, mem_mb: int) -> None:
        self.free_cpus += cpus
        self.free_mem += mem_mb
        # Every waiter looks again: a small task may fit where the first in line does not.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
