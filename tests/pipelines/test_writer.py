"""The writer of the runs' state on a real database: what was saved before a flush is in
the database when the flush returns, also while changes keep coming (a busy server), and
a burst's changes are written as they were last saved."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path

import pytest

from strato.db import utcnow
from strato.pipelines.records import RunRecord, RunState, TaskRecord, TaskState
from strato.pipelines.store import RunStore
from strato.pipelines.writer import Writer
from tests.pipelines.runs_helpers import open_store, task

pytestmark = pytest.mark.asyncio

PATIENCE = 20.0


def new_run(store: RunStore, count: int) -> tuple[RunRecord, list[TaskRecord]]:
    now = utcnow()
    run = RunRecord(
        id="r1",
        pipeline="p@1",
        config={},
        submitter="alice",
        project="/nowhere",
        state=RunState.running,
        created=now,
        updated=now,
    )
    tasks = [
        TaskRecord(
            run_id=run.id,
            name=f"t{i}",
            position=i,
            state=TaskState.pending,
            spec=task(f"t{i}"),
            parents=frozenset(),
        )
        for i in range(count)
    ]
    store.insert(run, tasks)
    return run, tasks


async def test_a_flush_is_not_held_up_by_changes_that_keep_coming(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    run, tasks = new_run(store, 2)
    writer = Writer(store)

    async def busy() -> None:  # another run's tasks changing all the time
        attempts = 0
        while True:
            attempts += 1
            writer.save(None, replace(tasks[1], attempts=attempts))
            await asyncio.sleep(0)  # a change on every turn of the loop

    churn = asyncio.create_task(busy())
    try:
        await asyncio.sleep(0.05)  # the writer in a burst: it gathers changes
        writer.save(None, replace(tasks[0], state=TaskState.complete, exit_code=0))
        await asyncio.wait_for(writer.flush(), PATIENCE)
        # Read on another connection, as another server would.
        (first, _) = await asyncio.to_thread(store.tasks, run.id)
        assert first.state == TaskState.complete
        assert first.exit_code == 0
    finally:
        churn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await churn
        await writer.close()


async def test_a_burst_of_changes_is_written_as_last_saved(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    run, tasks = new_run(store, 200)
    writer = Writer(store)
    try:
        for attempt in (1, 2, 3):  # each task's start, then its end, many times over
            for t in tasks:
                writer.save(None, replace(t, state=TaskState.running, attempts=attempt))
                await asyncio.sleep(0)
            for t in tasks:
                state = TaskState.complete if attempt == 3 else TaskState.pending
                writer.save(None, replace(t, state=state, attempts=attempt, exit_code=attempt))
        ended = replace(run, state=RunState.succeeded, finished=utcnow())
        writer.save(ended)
        await asyncio.wait_for(writer.flush(), PATIENCE)
        written = await asyncio.to_thread(store.tasks, run.id)
        assert {(t.state, t.attempts, t.exit_code) for t in written} == {(TaskState.complete, 3, 3)}
        assert (await asyncio.to_thread(store.get, run.id)).state == RunState.succeeded
    finally:
        await writer.close()
