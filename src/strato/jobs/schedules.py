"""Schedules as database rows (table ``job_schedules``) and the service offered as
``ctx.schedules``.

A run is claimed by moving the schedule's ``next_run`` with a conditional UPDATE
(``WHERE next_run = <the due time read>``): of any number of schedulers that read the
same due time, one UPDATE matches the row and the others match none, on SQLite,
PostgreSQL and MariaDB alike, without locks held across the submit.
"""

from __future__ import annotations

import builtins
import json
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import JSON, Boolean, String, Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from strato.db import Base, UTCDateTime
from strato.errors import Conflict, InvalidInput, NotFound
from strato.job_engine import ScheduleRecord
from strato.jobs.model.cron import Cron
from strato.jobs.model.jobs import check_task, new_job_id

_NAME = re.compile(r"^[A-Za-z0-9][\w.:/-]{0,254}$")


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ScheduleRow(Base):
    __tablename__ = "job_schedules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(512))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str] = mapped_column(String(255))
    process_id: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean)
    last_run: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_run: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    last_job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


_TABLE = cast("Table", ScheduleRow.__table__)
_FIELDS = [c.name for c in _TABLE.columns]


def _record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(**{name: getattr(row, name) for name in _FIELDS})


def _second(moment: datetime) -> datetime:
    # Times are stored to the second (MariaDB's DATETIME); cron times are whole minutes.
    return moment.replace(microsecond=0)


class ScheduleStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def insert(self, record: ScheduleRecord) -> None:
        try:
            with self.sessions.begin() as session:
                session.execute(_TABLE.insert(), [{n: getattr(record, n) for n in _FIELDS}])
        except IntegrityError:
            raise Conflict(f"a schedule named {record.name!r} exists") from None

    def get(self, name: str) -> ScheduleRecord:
        with self.sessions() as session:
            row = session.execute(select(_TABLE).where(_TABLE.c.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"no schedule {name!r}")
        return _record(row)

    def save(self, record: ScheduleRecord) -> None:
        values = {n: getattr(record, n) for n in _FIELDS if n not in ("id", "created")}
        with self.sessions.begin() as session:
            session.execute(update(_TABLE).where(_TABLE.c.id == record.id).values(values))

    def delete(self, name: str) -> bool:
        with self.sessions.begin() as session:
            done = session.connection().execute(delete(_TABLE).where(_TABLE.c.name == name))
        return bool(done.rowcount)

    def list(
        self, *, owner: str | None = None, process_id: str | None = None
    ) -> builtins.list[ScheduleRecord]:
        query = select(_TABLE).order_by(_TABLE.c.name)
        if owner is not None:
            query = query.where(_TABLE.c.owner == owner)
        if process_id is not None:
            query = query.where(_TABLE.c.process_id == process_id)
        with self.sessions() as session:
            return [_record(row) for row in session.execute(query)]

    def due(self, now: datetime) -> builtins.list[ScheduleRecord]:
        """Enabled schedules whose next run is at or before ``now``, earliest first."""
        query = (
            select(_TABLE)
            .where(_TABLE.c.enabled.is_(True), _TABLE.c.next_run <= now)
            .order_by(_TABLE.c.next_run)
        )
        with self.sessions() as session:
            return [_record(row) for row in session.execute(query)]

    def earliest(self) -> datetime | None:
        """The next run of all enabled schedules: when a scheduler has work next."""
        query = select(_TABLE.c.next_run).where(
            _TABLE.c.enabled.is_(True), _TABLE.c.next_run.is_not(None)
        )
        with self.sessions() as session:
            found = session.execute(query.order_by(_TABLE.c.next_run).limit(1)).scalar()
        return cast("datetime | None", found)

    def claim(self, schedule_id: str, due: datetime, then: datetime, now: datetime) -> bool:
        """The run of ``schedule_id`` due at ``due`` is this caller's, and its next run is
        ``then``: True for exactly one caller however many try with the same ``due``."""
        claim = (
            update(_TABLE)
            .where(
                _TABLE.c.id == schedule_id,
                _TABLE.c.next_run == due,
                _TABLE.c.enabled.is_(True),
            )
            .values(next_run=then, last_run=due, updated=_second(now))
        )
        with self.sessions.begin() as session:
            return session.connection().execute(claim).rowcount == 1

    def park(self, schedule_id: str, due: datetime) -> None:
        """No next run for a schedule that cannot compute one (until it is updated)."""
        with self.sessions.begin() as session:
            session.execute(
                update(_TABLE)
                .where(_TABLE.c.id == schedule_id, _TABLE.c.next_run == due)
                .values(next_run=None)
            )

    def ran(self, schedule_id: str, job_id: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(_TABLE).where(_TABLE.c.id == schedule_id).values(last_job_id=job_id)
            )


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"name: {name!r} is not a schedule name (letters, digits and . _ : / -, "
            "starting with a letter or digit, at most 255)"
        )
    return name


def _check_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: a JSON object is needed")
    try:
        json.dumps(inputs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"inputs: not JSON ({exc})") from None
    return inputs


class ScheduleService:
    """:class:`strato.job_engine.Schedules` over a :class:`ScheduleStore`; a scheduler in
    this process hears of every change (:meth:`subscribe`) and wakes to reconsider."""

    def __init__(self, store: ScheduleStore, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def _next(self, cron: Cron, enabled: bool, now: datetime) -> datetime | None:
        return cron.next_after(now) if enabled else None

    def add(
        self,
        *,
        name: str,
        cron: str,
        task: str,
        inputs: dict[str, Any],
        owner: str,
        process_id: str,
        timezone: str = "UTC",
        enabled: bool = True,
    ) -> ScheduleRecord:
        parsed = Cron.parse(cron, timezone)
        now = _second(self.clock.now())
        record = ScheduleRecord(
            id=new_job_id(),
            name=_check_name(name),
            cron=parsed.expression,
            timezone=timezone,
            task=check_task(task),
            inputs=_check_inputs(inputs),
            owner=owner,
            process_id=process_id,
            enabled=enabled,
            last_run=None,
            next_run=self._next(parsed, enabled, now),
            last_job_id=None,
            created=now,
            updated=now,
        )
        self.store.insert(record)
        self._changed()
        return record

    def update(
        self,
        name: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        task: str | None = None,
        inputs: dict[str, Any] | None = None,
        process_id: str | None = None,
        enabled: bool | None = None,
    ) -> ScheduleRecord:
        old = self.store.get(name)
        parsed = Cron.parse(
            cron if cron is not None else old.cron,
            timezone if timezone is not None else old.timezone,
        )
        now = _second(self.clock.now())
        new = replace(
            old,
            cron=parsed.expression,
            timezone=parsed.timezone,
            task=check_task(task) if task is not None else old.task,
            inputs=_check_inputs(inputs) if inputs is not None else old.inputs,
            process_id=process_id if process_id is not None else old.process_id,
            enabled=enabled if enabled is not None else old.enabled,
            updated=now,
        )
        if (new.cron, new.timezone, new.enabled) != (old.cron, old.timezone, old.enabled):
            # A new time counts from now: no run is owed for the time it was off or other.
            new = replace(new, next_run=self._next(parsed, new.enabled, now))
        self.store.save(new)
        self._changed()
        return new

    def remove(self, name: str) -> None:
        if not self.store.delete(name):
            raise NotFound(f"no schedule {name!r}")
        self._changed()

    def get(self, name: str) -> ScheduleRecord:
        return self.store.get(name)

    def list(
        self, *, owner: str | None = None, process_id: str | None = None
    ) -> builtins.list[ScheduleRecord]:
        return self.store.list(owner=owner, process_id=process_id)
