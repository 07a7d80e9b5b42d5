"""The scheduler: submits the runs of schedules as they fall due (like Celery beat).

It sleeps until the earliest next run of all schedules, with no polling floor, and wakes
at once when a schedule changes in this process. Changes made by another process (the
command line beside a running server) are seen when it next wakes, at the latest after
``rescan`` seconds.

Each due run is claimed in the database before it is submitted (ScheduleStore.claim):
however many schedulers run on one database, one of them submits it. A run is claimed
and then submitted, so a scheduler killed between the two loses that one run: a run is
submitted at most once, and exactly once while a scheduler is up.

Missed runs (every scheduler was down, or a run took the scheduler past several due
times): one catch-up run is submitted for the earliest missed time, as soon as a
scheduler is back, and the ones after it are skipped; the next run is the first time
the expression matches after now. A daily report missed for a week is made once, not
seven times at once; a schedule every minute does not flood the engine after an hour off.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from strato.job_engine import JobEngine, ScheduleRecord
from strato.jobs.model.cron import Cron
from strato.jobs.schedules import ScheduleService

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self, schedules: ScheduleService, jobs: JobEngine, *, rescan: float = 60.0
    ) -> None:
        self.schedules = schedules
        self.store = schedules.store
        self.clock = schedules.clock
        self.jobs = jobs
        self.rescan = rescan
        self._cond = threading.Condition()
        self._poked = False
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------

    def start(self) -> None:
        self.schedules.subscribe(self.wake)
        self._thread = threading.Thread(target=self._loop, name="strato-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the schedules again now (one changed, or the clock was moved)."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def close(self) -> None:
        self.schedules.unsubscribe(self.wake)
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def join(self) -> None:
        """Until :meth:`close` (from another thread or a signal handler)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=1.0)

    # --- work ---------------------------------------------------------------------------

    def run_due(self) -> datetime | None:
        """Submit every run due now; the earliest next run of all schedules after that."""
        now = self.clock.now()
        for schedule in self.store.due(now):
            self._run(schedule, now)
        return self.store.earliest()

    def _run(self, schedule: ScheduleRecord, now: datetime) -> None:
        due = schedule.next_run
        assert due is not None  # due() lists only schedules with a next run
        try:
            cron = Cron.parse(schedule.cron, schedule.timezone)
            then = cron.next_after(now)
        except Exception as exc:
            # Written by something that did not check it (or a time zone this node does
            # not know); parked, so it is not due again at once, and the others still run.
            log.error("schedule %s: %s; parked until it is updated", schedule.name, exc)
            self.store.park(schedule.id, due)
            return
        if then is None:
            log.error("schedule %s: %r matches no time any more", schedule.name, schedule.cron)
            self.store.park(schedule.id, due)
            return
        if not self.store.claim(schedule.id, due, then, now):
            return  # another scheduler has it (or it changed since it was read)
        after_due = cron.next_after(due)
        if after_due is not None and after_due <= now:
            log.warning(
                "schedule %s: running the run due at %s late; the runs after it until now "
                "are skipped (next at %s)",
                schedule.name,
                due.isoformat(),
                then.isoformat(),
            )
        try:
            job = self.jobs.submit(
                task=schedule.task,
                inputs=schedule.inputs,
                owner=schedule.owner,
                process_id=schedule.process_id,
            )
        except Exception:
            log.exception("schedule %s: the run due at %s was not submitted", schedule.name, due)
            return
        self.store.ran(schedule.id, job.id)
        log.info("schedule %s: job %s submitted for %s", schedule.name, job.id, due.isoformat())

    def _loop(self) -> None:
        while True:
            try:
                earliest = self.run_due()
                wait = self.rescan
                if earliest is not None:
                    wait = min(wait, max(0.0, (earliest - self.clock.now()).total_seconds()))
            except Exception:
                # The database away for a while: try again after the rescan.
                log.exception("the scheduler could not read its schedules; trying again")
                wait = self.rescan
            with self._cond:
                if not self._poked and not self._closed:
                    self._cond.wait(wait)
                self._poked = False
                if self._closed:
                    return
