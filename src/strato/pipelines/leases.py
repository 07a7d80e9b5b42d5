"""Which server or worker drives each active run, when several share one database.

Each driver (a `strato up` server, or a `strato pipelines worker` process) holds a lease
on every run it drives and renews them together, every third of the lease's length. A
driver that stops cleanly gives its runs up; one that dies lets its leases run out, and
then another takes the runs up (a server's sweep, or the scheduler's on Celery). A node
started again under the same name takes its own runs back at once, without waiting for
the leases of the process it replaces. A cancel asked of a server that does not drive
the run is written beside the run; its driver sees it when it next renews.

The run's rows stay written by one driver at a time; a driver that stalled past its lease
learns at its next renewal that the run was taken and lets it go without another write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta

from strato.db import utcnow
from strato.pipelines.store import Lease, Renewed, RunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTerms:
    node: str  # this server's or worker's node name (distinct per process on one database)
    seconds: float = 30.0  # a driver silent this long loses its runs
    sweep: bool = True  # look for runs nobody drives (servers; on Celery, the scheduler)


class Leases:
    """The lease loop of one driver. ``driven``: the ids of the runs it drives now;
    ``take``: drive one more run, claimed for it; ``lose`` and ``cancel``: stop driving
    a run taken by another, cancel one whose cancel was asked elsewhere."""

    def __init__(
        self,
        store: RunStore,
        terms: LeaseTerms,
        *,
        driven: Callable[[], Collection[str]],
        take: Callable[[str], Awaitable[None]],
        lose: Callable[[str], Awaitable[None]],
        cancel: Callable[[str], None],
    ) -> None:
        self.store = store
        self.terms = terms
        self.holder = secrets.token_hex(16)
        self._driven = driven
        self._take = take
        self._lose = lose
        self._cancel = cancel
        self._loop: asyncio.Task[None] | None = None

    def lease(self) -> Lease:
        until = utcnow() + timedelta(seconds=self.terms.seconds)
        return Lease(self.terms.node, self.holder, until)

    async def claim(self, run_id: str, own_node: bool = False) -> bool:
        return await asyncio.to_thread(self.store.claim, run_id, self.lease(), utcnow(), own_node)

    async def sweep(self, own_node: bool = False) -> list[str]:
        """Claims and takes up the runs nobody drives; their ids. ``own_node``: also
        those this node held before it was started again."""
        node = self.terms.node if own_node else None
        found = await asyncio.to_thread(self.store.claimable, utcnow(), node)
        driven = set(self._driven())
        taken = []
        for run_id in found:
            if run_id in driven or not await self.claim(run_id, own_node):
                continue  # another driver was quicker
            await self._take(run_id)
            taken.append(run_id)
        return taken

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="pipeline-leases")

    async def _run(self) -> None:
        interval = self.terms.seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew()
                if self.terms.sweep:
                    taken = await self.sweep()
                    if taken:
                        log.info("took up %d pipeline runs nobody drove", len(taken))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database down a while: tried again next round
                log.warning("pipeline run leases not renewed: %s", exc)

    async def renew(self) -> Renewed:
        ids = list(self._driven())
        if not ids:
            return Renewed(frozenset(), frozenset())
        renewed = await asyncio.to_thread(self.store.renew, ids, self.lease())
        for run_id in renewed.lost:
            log.warning("pipeline run %s was taken up by another driver: let go", run_id)
            await self._lose(run_id)
        for run_id in renewed.cancel:
            self._cancel(run_id)
        return renewed

    async def close(self, release: Collection[str]) -> None:
        """Stops renewing and gives up ``release`` (the runs left active)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if release:
            try:
                await asyncio.to_thread(self.store.release, list(release), self.holder)
            except Exception as exc:  # they will be taken up when their leases run out
                log.warning("pipeline run leases not given up: %s", exc)
