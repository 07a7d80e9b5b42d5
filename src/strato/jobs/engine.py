"""The job engine: :class:`strato.job_engine.JobEngine` over the jobs table and an executor.

Records of the jobs this engine runs are kept in memory while they run (``get`` answers
from there, so a status or a progress tick is visible the moment it arrives) and written
to the database by one writer thread, in batches: a burst of events costs one transaction,
not one each, and a progress tick no round trip at all. A job's finish is pushed to its
waiters once it is written, through their event loops (no polling, no floor).

Jobs that finished lately stay in memory a minute (``keep_finished`` of them): the
status and results requests that follow a job's end are answered without a query. Only
this engine changes a finished job (dismiss), so what it keeps cannot go stale.

On start, jobs a previous engine left accepted are run again, and those it left running
are run again while they have retries left, else failed saying the server stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from strato.caching import LRU
from strato.db import utcnow
from strato.errors import InvalidInput, Unavailable
from strato.job_engine import FINISHED, JobRecord, JobStatus
from strato.jobs.executor import Dispatch, Executor
from strato.jobs.model.jobs import check_task, new_job_id, one_line
from strato.jobs.store import JobStore
from strato.jobs.timers import Timers
from strato.retry import Backoff

log = logging.getLogger(__name__)

# Seconds a finished job stays in memory: the requests following its end come within it.
KEEP_FINISHED_FOR = 60.0

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


@dataclass(eq=False)
class _Insert:
    """A submitted job's row, waiting for the writer's next commit: a thread waits on
    ``written``, a coroutine on ``future`` (set through its loop)."""

    row: dict[str, Any]
    written: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    waiter: _Waiter | None = None

    def done(self) -> None:
        self.written.set()
        if self.waiter is not None:
            loop, future = self.waiter
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                loop.call_soon_threadsafe(_set, future, None)


@dataclass
class _Live:
    record: JobRecord
    retries: int
    time_limit: float | None


class JobService:
    def __init__(
        self,
        store: JobStore,
        executor: Executor,
        *,
        result_root: Path,
        timers: Timers,
        retries: int = 0,
        time_limit: float | None = None,
        backoff: Backoff = Backoff(0.5, 30.0),
        keep_finished: int = 1000,
        write_delay: float = 0.0,
    ) -> None:
        self.store = store
        self.executor = executor
        self.result_root = result_root
        self.timers = timers
        self.retries = retries
        self.time_limit = time_limit
        self.backoff = backoff
        self._lock = threading.Lock()
        self._live: dict[str, _Live] = {}
        self._finished: LRU[str, JobRecord] | None = (
            LRU(keep_finished, ttl=KEEP_FINISHED_FOR) if keep_finished > 0 else None
        )
        self.write_delay = write_delay
        # Set when something waits for the writer (a submit, a job's end): no delay then.
        self._urgent = False
        self._dirty: dict[str, JobRecord] = {}
        self._inserts: list[_Insert] = []
        self._waiters: dict[str, list[_Waiter]] = {}
        self._wake = threading.Condition(self._lock)
        self._started = False
        self._recover_pending = False
        self._recover_lock = threading.Lock()
        self._closing = False
        self._writer: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------

    def start(self, *, recover: bool = True) -> None:
        """Start the executor and take up what a previous engine left unfinished (unless
        ``recover`` is False: an engine beside a running server, as `strato scheduler`'s,
        leaves the server's jobs to it)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._writer = threading.Thread(target=self._write, name="strato-job-writer", daemon=True)
        self._writer.start()
        self.executor.start(self)
        self._recover_pending = recover
        self._try_recover()

    def _try_recover(self) -> None:
        """Recovery needs the database; a database that is down, unmigrated or read-only at
        start must not keep the node from serving (its requests answer 503 where they meet
        it), so recovery is postponed to the next submit instead."""
        if not self._recover_pending:
            return
        with self._recover_lock:  # once, whatever the number of submits racing here
            if not self._recover_pending:
                return
            try:
                self._recover()
            except (SQLAlchemyError, OSError, Unavailable) as exc:
                log.warning(
                    "jobs left by a previous server are taken up later: %s", one_line(str(exc))
                )
                return
            self._recover_pending = False

    def close(self) -> None:
        """Stop: running jobs stay ``running`` in the database, for the next start."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._wake.notify()
        if self._started:
            self.executor.close()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.timers.close()

    def _recover(self) -> None:
        for left in self.store.unfinished():
            rec = left.record
            now = utcnow()
            if rec.status == JobStatus.running and rec.attempts > left.retries:
                reason = (
                    f"the server stopped while it ran (attempt {rec.attempts} of "
                    f"{left.retries + 1})"
                )
                self.store.save([_failed(rec, reason, now)])
                log.warning("job %s failed: %s", rec.id, reason)
                continue
            if rec.status == JobStatus.running:
                rec = replace(
                    rec,
                    status=JobStatus.accepted,
                    progress=0,
                    message="requeued: the server stopped while it ran",
                    updated=now,
                )
                self.store.save([rec])
                log.info("job %s requeued: the server stopped while it ran", rec.id)
            with self._lock:
                self._live[rec.id] = _Live(rec, left.retries, left.time_limit)
            self.executor.run(self._dispatch(rec, left.time_limit))

    def _ensure_started(self) -> None:
        if not self._started:
            self.start()

    # --- the JobEngine protocol ---------------------------------------------------------

    def submit(
        self,
        *,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None = None,
        retries: int = 0,
    ) -> JobRecord:
        return self._submit(task, inputs, owner, process_id, time_limit, retries, run=True)

    def track(self, *, task: str, inputs: dict[str, Any], owner: str, process_id: str) -> JobRecord:
        """A job its caller runs (a workflow's coordinator), reporting through the executor
        events; never handed to the executor but after a restart, when its caller is gone
        and ``task`` runs to say so."""
        return self._submit(task, inputs, owner, process_id, None, 0, run=False)

    async def submit_async(
        self,
        *,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None = None,
        retries: int = 0,
    ) -> JobRecord:
        job = (task, inputs, owner, process_id, time_limit, retries)
        loop = asyncio.get_running_loop()
        if not self._started or self._recover_pending:
            # Starting and recovering meet the database: in a thread, once.
            return await loop.run_in_executor(None, lambda: self._submit(*job, run=True))
        future: asyncio.Future[Any] = loop.create_future()
        record, insert = self._enqueue(*job, True, (loop, future))
        await future
        return self._written(record, insert)

    def _submit(
        self,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None,
        retries: int,
        *,
        run: bool,
    ) -> JobRecord:
        self._try_recover()
        self._ensure_started()
        record, insert = self._enqueue(task, inputs, owner, process_id, time_limit, retries, run)
        insert.written.wait()
        return self._written(record, insert)

    def _enqueue(
        self,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        time_limit: float | None,
        retries: int,
        run: bool,
        waiter: _Waiter | None = None,
    ) -> tuple[JobRecord, _Insert]:
        """A new job's record, its row handed to the writer and (``run``) the job to the
        executor at once, never blocking: the job runs while its row is written. Its state
        changes cannot be written first: the writer writes a batch's new rows before its
        changes, in one transaction, and a change made while the row's batch is written
        waits for the next."""
        check_task(task)
        if time_limit is not None and time_limit <= 0:
            raise InvalidInput("time_limit: a job needs more than 0 seconds")
        if retries < 0:
            raise InvalidInput("retries: cannot be negative")
        now = utcnow()
        record = JobRecord(
            id=new_job_id(),
            owner=owner,
            process_id=process_id,
            task=task,
            inputs=inputs,
            status=JobStatus.accepted,
            progress=0,
            message="",
            created=now,
            started=None,
            finished=None,
            updated=now,
            results=None,
            attempts=0,
            error=None,
        )
        limit = time_limit if time_limit is not None else self.time_limit
        retries = max(retries, self.retries)
        # Written by the writer with whatever else is waiting (group commit: concurrent
        # submits share a transaction), and only then run, so that no state change is
        # written before its row exists.
        insert = _Insert(self.store.row(record, retries=retries, time_limit=limit), waiter=waiter)
        with self._lock:
            if self._closing:
                raise Unavailable("the job engine is stopping")
            self._inserts.append(insert)
            self._live[record.id] = _Live(record, retries, limit)
            self._urgent = True
            self._wake.notify()
        if run:
            self.executor.run(self._dispatch(record, limit))
        return record, insert

    def _written(self, record: JobRecord, insert: _Insert) -> JobRecord:
        """The job once its row is written; if that failed, the job is stopped, forgotten
        and the submitter hears why."""
        if insert.error is None:
            return record
        with self._lock:
            self._live.pop(record.id, None)
            self._dirty.pop(record.id, None)
            waiters = self._waiters.pop(record.id, [])
        self.executor.cancel(record.id)
        _resolve(waiters, _failed(record, f"not recorded: {insert.error}", utcnow()))
        raise insert.error

    def get(self, job_id: str) -> JobRecord:
        found = self.peek(job_id)
        return found if found is not None else self.store.get(job_id)

    def peek(self, job_id: str) -> JobRecord | None:
        with self._lock:
            live = self._live.get(job_id)
        if live is not None:
            return live.record
        return None if self._finished is None else self._finished.peek(job_id)

    def list(
        self,
        *,
        owner: str | None = None,
        process_id: str | None = None,
        status: Sequence[JobStatus] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[JobRecord]:
        found = self.store.list(
            owner=owner,
            process_id=process_id,
            status=status,
            since=since,
            until=until,
            limit=limit,
            after=after,
        )
        # The database may be a batch behind the jobs running here.
        with self._lock:
            fresh = [self._live[r.id].record if r.id in self._live else r for r in found]
        wanted = {JobStatus(s) for s in status}
        return [r for r in fresh if not wanted or r.status in wanted]

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobRecord] = loop.create_future()
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                self._waiters.setdefault(job_id, []).append((loop, future))
        if live is None:
            # Not running here: finished, or another engine's (which cannot push to us).
            return self.get(job_id)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            with self._lock:
                waiting = self._waiters.get(job_id, [])
                if (loop, future) in waiting:
                    waiting.remove((loop, future))
            return self.get(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        now = utcnow()
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                if live.record.done:
                    return live.record
                live.record = _dismissed(live.record, now)
                self._changed(live.record)
                record = live.record
        if live is None:
            # Not running here: a finished job stays as it is; one another engine runs is
            # marked, and that engine's writes leave the mark (JobStore.save).
            record = self.get(job_id)
            if record.done:
                return record
            record = _dismissed(record, now)
            self.store.save([record])
            return record
        self.executor.cancel(job_id)
        return record

    def dismiss(self, job_id: str) -> JobRecord:
        record = self.cancel(job_id)
        if record.status != JobStatus.dismissed:
            record = _dismissed(record, utcnow(), message="dismissed")
        self.store.delete(job_id)
        shutil.rmtree(self.result_root / job_id, ignore_errors=True)
        with self._lock:
            self._live.pop(job_id, None)
            self._dirty.pop(job_id, None)
            waiters = self._waiters.pop(job_id, [])
        if self._finished is not None:
            self._finished.pop(job_id)
        _resolve(waiters, record)
        return record

    # --- executor events (any thread) ---------------------------------------------------

    def started(self, job_id: str) -> None:
        now = utcnow()
        with self._lock:
            live = self._running(job_id)
            if live is not None:
                live.record = replace(
                    live.record,
                    status=JobStatus.running,
                    started=live.record.started or now,
                    updated=now,
                    attempts=live.record.attempts + 1,
                )
                self._changed(live.record)

    def progress(self, job_id: str, percent: int, message: str) -> None:
        with self._lock:
            live = self._running(job_id)
            if live is not None:
                live.record = replace(
                    live.record,
                    progress=max(0, min(100, percent)),
                    message=one_line(message),
                    updated=utcnow(),
                )
                self._changed(live.record)

    def succeeded(self, job_id: str, outputs: dict[str, Any]) -> None:
        now = utcnow()
        with self._lock:
            live = self._running(job_id)
            if live is not None:
                live.record = replace(
                    live.record,
                    status=JobStatus.successful,
                    progress=100,
                    results=outputs,
                    finished=now,
                    updated=now,
                )
                self._changed(live.record)

    def failed(self, job_id: str, reason: str, retryable: bool) -> None:
        now = utcnow()
        retry_in: float | None = None
        with self._lock:
            live = self._running(job_id)
            if live is None:
                return
            rec = live.record
            if retryable and rec.attempts <= live.retries:
                retry_in = self.backoff.delay(rec.attempts)
                live.record = replace(
                    rec,
                    status=JobStatus.accepted,
                    progress=0,
                    message=one_line(f"retrying in {retry_in:g} s: {reason}"),
                    updated=now,
                )
            else:
                live.record = _failed(rec, reason, now)
            self._changed(live.record)
            limit = live.time_limit
        if retry_in is not None:
            log.info("job %s: retrying in %g s: %s", job_id, retry_in, reason)
            self.timers.after(retry_in, lambda: self._rerun(job_id, limit))

    def _rerun(self, job_id: str, limit: float | None) -> None:
        with self._lock:
            live = self._live.get(job_id)
            if live is None or live.record.status != JobStatus.accepted:
                return  # cancelled while it waited
            record = live.record
        self.executor.run(self._dispatch(record, limit))

    # --- inside -------------------------------------------------------------------------

    def _dispatch(self, record: JobRecord, limit: float | None) -> Dispatch:
        return Dispatch(record.id, record.task, record.inputs, self.result_root / record.id, limit)

    def _running(self, job_id: str) -> _Live | None:
        """Under the lock: the job if this engine still runs it."""
        if self._closing:
            return None  # stopping: what ran is left as it is, for the next start
        live = self._live.get(job_id)
        return None if live is None or live.record.done else live

    def _changed(self, record: JobRecord) -> None:
        """Under the lock: ``record`` is to be written."""
        self._dirty[record.id] = record
        if record.status in FINISHED:
            self._urgent = True
        self._wake.notify()

    def _write(self) -> None:
        backoff = Backoff(0.05, 5.0)
        failures = 0
        while True:
            with self._lock:
                while not self._dirty and not self._inserts and not self._closing:
                    self._wake.wait()
                self._linger()
                batch, self._dirty = self._dirty, {}
                inserts, self._inserts = self._inserts, []
                if not batch and not inserts and self._closing:
                    return
            # A job that moved on before its row was written (a short job often ends
            # first) is inserted as it is now: one statement, not an insert and an update.
            changed = dict(batch)
            rows = []
            for insert in inserts:
                now = changed.pop(insert.row["id"], None)
                rows.append(insert.row if now is None else self.store.row_as(insert.row, now))
            try:
                self.store.write(rows, changed.values())
            except Exception as exc:
                failures += 1
                log.exception("job states could not be written; trying again")
                # Submitters hear of it at once; state changes are tried again.
                for insert in inserts:
                    insert.error = exc
                    insert.done()
                with self._lock:
                    for job_id, record in batch.items():
                        self._dirty.setdefault(job_id, record)
                    if self._closing:
                        return
                    self._wake.wait(backoff.delay(failures))
                continue
            failures = 0
            for insert in inserts:
                insert.done()
            self._settle(batch)

    def _linger(self) -> None:
        """Under the lock: a start or a progress tick waits up to ``write_delay`` for what
        follows it, so that a short job's start and end cost one transaction, not two.
        Nobody waits for those writes (``get`` answers from memory); a submit or an end
        is written at once."""
        deadline = time.monotonic() + self.write_delay
        while not self._urgent and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.wait(left)
        self._urgent = False

    def _settle(self, written: dict[str, JobRecord]) -> None:
        """Finished jobs now written leave memory, and their waiters hear of them."""
        woken: list[tuple[list[_Waiter], JobRecord]] = []
        with self._lock:
            for job_id, record in written.items():
                if record.status not in FINISHED:
                    continue
                live = self._live.get(job_id)
                if live is not None and live.record is record:
                    del self._live[job_id]
                    if self._finished is not None:
                        self._finished.put(job_id, record)
                woken.append((self._waiters.pop(job_id, []), record))
        for waiters, record in woken:
            _resolve(waiters, record)


def _resolve(waiters: list[_Waiter], record: JobRecord) -> None:
    for loop, future in waiters:
        # A closed loop: no one waits there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_set, future, record)


def _set(future: asyncio.Future[Any], record: JobRecord | None) -> None:
    if not future.done():
        future.set_result(record)


def _failed(record: JobRecord, reason: str, now: datetime) -> JobRecord:
    reason = one_line(reason)
    return replace(
        record, status=JobStatus.failed, message=reason, error=reason, finished=now, updated=now
    )


def _dismissed(record: JobRecord, now: datetime, message: str = "cancelled") -> JobRecord:
    return replace(record, status=JobStatus.dismissed, message=message, finished=now, updated=now)
