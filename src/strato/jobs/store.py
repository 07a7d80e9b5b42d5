"""Jobs as database rows: what survives a restart and what every node lists.

Only plain statements on the ``jobs`` table, so the engine can write the state changes of
many jobs in one transaction (:meth:`JobStore.save`) instead of one per progress tick.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    Float,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from strato.db import Base, UTCDateTime
from strato.db.sequence import Sequencer
from strato.errors import NotFound
from strato.job_engine import FINISHED, JobRecord, JobStatus

MAX_LIMIT = 10_000


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    owner: Mapped[str] = mapped_column(String(255))
    process_id: Mapped[str] = mapped_column(String(255))
    task: Mapped[str] = mapped_column(String(512))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(1024))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)
    time_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(1024), nullable=True)


_TABLE = cast("Table", JobRow.__table__)
_RECORD_COLUMNS = [
    _TABLE.c[name]
    for name in (
        "id",
        "owner",
        "process_id",
        "task",
        "inputs",
        "status",
        "progress",
        "message",
        "created",
        "started",
        "finished",
        "updated",
        "results",
        "attempts",
        "error",
    )
]
_MUTABLE = (
    "status",
    "progress",
    "message",
    "started",
    "finished",
    "updated",
    "results",
    "attempts",
    "error",
)
_INSERT = _TABLE.insert()
# One statement for every save, run with many parameter sets at once. A dismissed job
# stays dismissed: another process (`strato jobs cancel`) may have marked it.
_SAVE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("_id"), _TABLE.c.status != JobStatus.dismissed.value)
    .values({name: bindparam(name) for name in _MUTABLE})
)


@dataclass(frozen=True)
class Unfinished:
    """A job left accepted or running, with what deciding its fate needs."""

    record: JobRecord
    retries: int
    time_limit: float | None


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        owner=row.owner,
        process_id=row.process_id,
        task=row.task,
        inputs=row.inputs,
        status=JobStatus(row.status),
        progress=row.progress,
        message=row.message,
        created=row.created,
        started=row.started,
        finished=row.finished,
        updated=row.updated,
        results=row.results,
        attempts=row.attempts,
        error=row.error,
    )


class JobStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._engine = cast(Engine, sessions.kw["bind"])
        self._seq = Sequencer()

    def row(self, record: JobRecord, *, retries: int, time_limit: float | None) -> dict[str, Any]:
        """The row a new job is inserted as (by :meth:`write`)."""
        values = {c.name: getattr(record, c.name) for c in _RECORD_COLUMNS}
        values.update(seq=self._seq.next(), retries=retries, time_limit=time_limit)
        return values

    def row_as(self, row: dict[str, Any], record: JobRecord) -> dict[str, Any]:
        """A new job's ``row`` with the state ``record`` has reached since: inserted as it
        is now, in place of the row and an update."""
        return {**row, **{name: getattr(record, name) for name in _MUTABLE}}

    def insert(self, record: JobRecord, *, retries: int, time_limit: float | None) -> None:
        self.write([self.row(record, retries=retries, time_limit=time_limit)], [])

    def get(self, job_id: str) -> JobRecord:
        with self.sessions() as session:
            row = session.execute(
                select(*_RECORD_COLUMNS).where(_TABLE.c.id == job_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return _record(row)

    def save(self, records: Iterable[JobRecord]) -> None:
        """The mutable fields of ``records``, in one transaction."""
        self.write([], records)

    def write(self, rows: Sequence[dict[str, Any]], records: Iterable[JobRecord]) -> None:
        """New ``rows`` (of :meth:`row`), then the mutable fields of ``records``, in one
        transaction: the engine's writer commits a whole batch at once."""
        params = [{"_id": r.id, **{name: getattr(r, name) for name in _MUTABLE}} for r in records]
        if not rows and not params:
            return
        # A connection, not an ORM session: these are plain statements, and the engine's
        # writer runs one such transaction per batch (a session costs 0.05 ms more).
        with self._engine.begin() as conn:
            if rows:
                conn.execute(_INSERT, list(rows))
            if params:
                conn.execute(_SAVE, params)

    def delete(self, job_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(_TABLE).where(_TABLE.c.id == job_id))

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
        query = select(*_RECORD_COLUMNS)
        if owner is not None:
            query = query.where(_TABLE.c.owner == owner)
        if process_id is not None:
            query = query.where(_TABLE.c.process_id == process_id)
        if status:
            query = query.where(_TABLE.c.status.in_([JobStatus(s).value for s in status]))
        if since is not None:
            query = query.where(_TABLE.c.created >= since)
        if until is not None:
            query = query.where(_TABLE.c.created <= until)
        with self.sessions() as session:
            if after is not None:
                mark = session.execute(
                    select(_TABLE.c.seq).where(_TABLE.c.id == after)
                ).scalar_one_or_none()
                if mark is None:
                    raise NotFound(f"no job {after!r} to list after")
                query = query.where(
                    or_(_TABLE.c.seq < mark, and_(_TABLE.c.seq == mark, _TABLE.c.id < after))
                )
            query = query.order_by(_TABLE.c.seq.desc(), _TABLE.c.id.desc())
            rows = session.execute(query.limit(max(1, min(limit, MAX_LIMIT)))).all()
        return [_record(row) for row in rows]

    def unfinished(self) -> builtins.list[Unfinished]:
        """Jobs accepted or running, oldest first (the order they are taken up again)."""
        waiting = [s.value for s in JobStatus if s not in FINISHED]
        query = (
            select(*_RECORD_COLUMNS, _TABLE.c.retries, _TABLE.c.time_limit)
            .where(_TABLE.c.status.in_(waiting))
            .order_by(_TABLE.c.seq)
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        return [Unfinished(_record(row), row.retries, row.time_limit) for row in rows]
