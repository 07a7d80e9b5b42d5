"""Runs and their tasks as rows (``pipeline_runs``, ``pipeline_tasks``): plain statements
on a connection, one transaction per change the runner makes."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from strato.db import UTCDateTime
from strato.db.sequence import Sequencer
from strato.errors import Conflict, NotFound
from strato.pipelines.records import (
    ACTIVE,
    ENDED,
    PostSteps,
    RunRecord,
    RunState,
    TaskRecord,
    TaskState,
    spec_from_json,
    spec_to_json,
)

MAX_LIMIT = 1000
# Ids in one IN (...) of the lease statements.
CHUNK = 500


@dataclass(frozen=True)
class Lease:
    """Who drives a run: a node's name, the driver's own token, and until when."""

    node: str
    holder: str
    until: datetime


@dataclass(frozen=True)
class Renewed:
    """What a driver learns when it renews its leases."""

    lost: frozenset[str]  # runs another driver has taken (this one stalled past its lease)
    cancel: frozenset[str]  # runs whose cancel was asked of another server


# The tables as the migrations make them (strato/pipelines/migrations); not in the ORM's
# metadata: only these plain statements use them.
metadata = MetaData()
runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger),
    Column("pipeline", String(255)),
    Column("config", JSON),
    Column("submitter", String(255)),
    Column("project", String(4096)),
    Column("state", String(16)),
    Column("created", UTCDateTime),
    Column("started", UTCDateTime, nullable=True),
    Column("finished", UTCDateTime, nullable=True),
    Column("updated", UTCDateTime),
    Column("reason", Text),
    Column("options", JSON),
    Column("steps", JSON),
    Column("lease_node", String(255), nullable=True),
    Column("lease_holder", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("cancel_requested", UTCDateTime, nullable=True),
)
tasks = Table(
    "pipeline_tasks",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("position", Integer),
    Column("state", String(16)),
    Column("attempts", Integer),
    Column("exit_code", Integer, nullable=True),
    Column("reason", Text),
    Column("started", UTCDateTime, nullable=True),
    Column("finished", UTCDateTime, nullable=True),
    Column("log", String(4096), nullable=True),
    Column("identity", String(64)),
    Column("backend_id", String(255), nullable=True),
    Column("spec", JSON),
    Column("parents", JSON),
)

_RUN_MUTABLE = ("state", "started", "finished", "updated", "reason", "steps")
_TASK_MUTABLE = (
    "state",
    "attempts",
    "exit_code",
    "reason",
    "started",
    "finished",
    "log",
    "backend_id",
)
_SAVE_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _RUN_MUTABLE})
)
_SAVE_TASK = (
    update(tasks)
    .where(tasks.c.run_id == bindparam("_run"), tasks.c.name == bindparam("_name"))
    .values({name: bindparam(name) for name in _TASK_MUTABLE})
)


def _run_values(run: RunRecord) -> dict[str, Any]:
    return {name: _run_value(run, name) for name in _RUN_MUTABLE}


def _run_value(run: RunRecord, name: str) -> Any:
    if name == "state":
        return run.state.value
    if name == "steps":
        return dict(run.steps)
    return getattr(run, name)


def _task_values(task: TaskRecord) -> dict[str, Any]:
    values = {name: getattr(task, name) for name in _TASK_MUTABLE}
    values["state"] = task.state.value
    return values


def _run(row: Any) -> RunRecord:
    options = row.options or {}
    return RunRecord(
        id=row.id,
        pipeline=row.pipeline,
        config=row.config,
        submitter=row.submitter,
        project=row.project,
        state=RunState(row.state),
        created=row.created,
        updated=row.updated,
        started=row.started,
        finished=row.finished,
        reason=row.reason,
        post=PostSteps(
            archive_to=options.get("archive_to"), notify=tuple(options.get("notify", ()))
        ),
        steps=row.steps or {},
        path=tuple(options.get("path", ())),
    )


_ACTIVE = runs.c.state.in_([s.value for s in ACTIVE])


def _lease_values(lease: Lease | None) -> dict[str, Any]:
    if lease is None:
        return {"lease_node": None, "lease_holder": None, "lease_until": None}
    return {"lease_node": lease.node, "lease_holder": lease.holder, "lease_until": lease.until}


def _task(row: Any) -> TaskRecord:
    return TaskRecord(
        run_id=row.run_id,
        name=row.name,
        position=row.position,
        state=TaskState(row.state),
        spec=spec_from_json(row.spec),
        parents=frozenset(row.parents),
        attempts=row.attempts,
        exit_code=row.exit_code,
        reason=row.reason,
        started=row.started,
        finished=row.finished,
        log=row.log,
        backend_id=row.backend_id,
    )


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seq = Sequencer()

    def insert(
        self, run: RunRecord, task_records: Sequence[TaskRecord], lease: Lease | None = None
    ) -> None:
        """A new run and its tasks, in one transaction; ``lease``: held by its submitter's
        server from the start (none: for whoever takes it up)."""
        row = {
            **_lease_values(lease),
            "id": run.id,
            "seq": self._seq.next(),
            "pipeline": run.pipeline,
            "config": run.config,
            "submitter": run.submitter,
            "project": run.project,
            "created": run.created,
            "options": {
                "archive_to": run.post.archive_to,
                "notify": list(run.post.notify),
                "path": list(run.path),
            },
            **_run_values(run),
        }
        with self.engine.begin() as conn:
            conn.execute(runs.insert(), [row])
            if task_records:
                conn.execute(tasks.insert(), [self._task_row(t) for t in task_records])

    @staticmethod
    def _task_row(task: TaskRecord) -> dict[str, Any]:
        return {
            "run_id": task.run_id,
            "name": task.name,
            "position": task.position,
            "identity": task.identity,
            "spec": spec_to_json(task.spec),
            "parents": sorted(task.parents),
            **_task_values(task),
        }

    def get(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).one_or_none()
        if row is None:
            raise NotFound(f"no pipeline run {run_id!r}")
        return _run(row)

    def tasks(self, run_id: str) -> list[TaskRecord]:
        query = select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.position)
        with self.engine.connect() as conn:
            return [_task(row) for row in conn.execute(query)]

    def save(
        self, runs_: Iterable[RunRecord] = (), task_records: Iterable[TaskRecord] = ()
    ) -> None:
        """The mutable fields of ``runs_`` and of ``task_records``, in one transaction."""
        task_params = [{"_run": t.run_id, "_name": t.name, **_task_values(t)} for t in task_records]
        run_params = [{"_id": r.id, **_run_values(r)} for r in runs_]
        with self.engine.begin() as conn:
            if task_params:
                conn.execute(_SAVE_TASK, task_params)
            if run_params:
                conn.execute(_SAVE_RUN, run_params)

    def replace_tasks(
        self, run: RunRecord, task_records: Sequence[TaskRecord], lease: Lease | None = None
    ) -> None:
        """The run's tasks become ``task_records`` (a retry's or a resume's), and the
        run's mutable fields are saved, in one transaction, if the run has ended: two
        servers asked at once to resume it, one does (the other's answer is Conflict)."""
        with self.engine.begin() as conn:
            restarted = conn.execute(
                update(runs)
                .where(runs.c.id == run.id, runs.c.state.in_([s.value for s in ENDED]))
                .values(cancel_requested=None, **_lease_values(lease))
            )
            if restarted.rowcount != 1:
                raise Conflict(f"pipeline run {run.id!r} is not ended: it was restarted meanwhile")
            conn.execute(delete(tasks).where(tasks.c.run_id == run.id))
            if task_records:
                conn.execute(tasks.insert(), [self._task_row(t) for t in task_records])
            conn.execute(_SAVE_RUN, [{"_id": run.id, **_run_values(run)}])

    def list(
        self,
        *,
        submitter: str | None = None,
        states: Sequence[RunState] = (),
        limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[RunRecord]:
        """Newest first; ``after``: the runs listed after that one (paging)."""
        query = select(runs)
        if submitter is not None:
            query = query.where(runs.c.submitter == submitter)
        if states:
            query = query.where(runs.c.state.in_([RunState(s).value for s in states]))
        with self.engine.connect() as conn:
            if after is not None:
                mark = conn.execute(
                    select(runs.c.seq).where(runs.c.id == after)
                ).scalar_one_or_none()
                if mark is None:
                    raise NotFound(f"no pipeline run {after!r} to list after")
                query = query.where(
                    or_(runs.c.seq < mark, and_(runs.c.seq == mark, runs.c.id < after))
                )
            query = query.order_by(runs.c.seq.desc(), runs.c.id.desc())
            rows = conn.execute(query.limit(max(1, min(limit, MAX_LIMIT)))).all()
        return [_run(row) for row in rows]

    # --- leases: which server or worker drives each active run --------------------------

    def claimable(self, now: datetime, node: str | None = None) -> builtins.list[str]:
        """Active runs nobody holds (or whose holder let its lease run out), oldest first;
        ``node``: also those held by that node (a node restarted takes its own back)."""
        free = or_(runs.c.lease_holder.is_(None), runs.c.lease_until < now)
        if node is not None:
            free = or_(free, runs.c.lease_node == node)
        query = select(runs.c.id).where(_ACTIVE, free).order_by(runs.c.seq)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def claim(self, run_id: str, lease: Lease, now: datetime, own_node: bool = False) -> bool:
        """Takes ``run_id`` for ``lease`` if it is active and free (see ``claimable``);
        whether it was. At most one of several drivers claiming at once gets it."""
        free = or_(
            runs.c.lease_holder.is_(None),
            runs.c.lease_until < now,
            runs.c.lease_holder == lease.holder,
        )
        if own_node:
            free = or_(free, runs.c.lease_node == lease.node)
        statement = update(runs).where(runs.c.id == run_id, _ACTIVE, free)
        with self.engine.begin() as conn:
            return conn.execute(statement.values(**_lease_values(lease))).rowcount == 1

    def renew(self, run_ids: Iterable[str], lease: Lease) -> Renewed:
        """Extends ``lease`` on the runs it still holds among ``run_ids``."""
        ids = list(run_ids)
        lost: set[str] = set()
        cancel: set[str] = set()
        with self.engine.begin() as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(chunk), runs.c.lease_holder == lease.holder)
                    .values(lease_until=lease.until)
                )
                query = select(runs.c.id, runs.c.lease_holder, runs.c.cancel_requested)
                held = {row.id: row for row in conn.execute(query.where(runs.c.id.in_(chunk)))}
                for run_id in chunk:
                    found = held.get(run_id)
                    if found is None or found.lease_holder != lease.holder:
                        lost.add(run_id)
                    elif found.cancel_requested is not None:
                        cancel.add(run_id)
        return Renewed(frozenset(lost), frozenset(cancel))

    def release(self, run_ids: Iterable[str], holder: str) -> None:
        """Gives up the runs ``holder`` holds among ``run_ids`` (a server stopping):
        the next server or worker takes them up at once."""
        ids = list(run_ids)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), CHUNK):
                conn.execute(
                    update(runs)
                    .where(runs.c.id.in_(ids[start : start + CHUNK]))
                    .where(runs.c.lease_holder == holder)
                    .values(**_lease_values(None))
                )

    def request_cancel(self, run_id: str, now: datetime) -> bool:
        """Asks whoever drives ``run_id`` to cancel it (seen when it next renews its
        lease); whether the run was active."""
        statement = (
            update(runs)
            .where(runs.c.id == run_id, _ACTIVE)
            .values(cancel_requested=now, state=RunState.cancelling.value, updated=now)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def counts(self) -> dict[RunState, int]:
        """How many runs are in each state (every state named, zero included)."""
        query = select(runs.c.state, func.count()).group_by(runs.c.state)
        with self.engine.connect() as conn:
            found = {RunState(state): n for state, n in conn.execute(query)}
        return {state: found.get(state, 0) for state in RunState}
