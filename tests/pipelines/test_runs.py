"""Runs on the server, local backend, real processes, SQLite and PostgreSQL: dependency
order, failures skipping descendants, retries, cancel, retry-failed, resume, resources,
who sees which run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from strato.errors import Conflict, InvalidInput, NotFound
from strato.pipelines.records import RunState, TaskState
from tests.pipelines.runs_helpers import (
    ADMIN,
    ALICE,
    BOB,
    PATIENCE,
    db_url,
    service,
    task,
    workflow,
)

pytestmark = pytest.mark.asyncio
__all__ = ["db_url"]  # the fixture, used by name


def states(tasks: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {t.name: t.state.value for t in tasks}


async def test_a_dag_runs_in_dependency_order(db_url: str, tmp_path: Path) -> None:
    runs = service(db_url, tmp_path)
    try:
        flow = workflow(
            [
                task("a", "echo a >> order"),
                task("b", "sleep 0.3; echo b >> order"),
                task("c", "echo c >> order"),
                task("d", "echo d >> order; echo done"),
                task("gate", None),  # no cmd: completes at once
            ],
            {"b": ["a"], "c": ["a"], "d": ["b", "c", "gate"]},
        )
        run = await runs.submit(flow, pipeline="demo@1.0", config={"x": 1}, submitter="alice")
        assert run.state == RunState.queued
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded, done.reason
        assert done.started is not None
        assert done.finished is not None
        order = (Path(done.project) / "order").read_text().split()
        assert order[0] == "a"
        assert order[-1] == "d"
        assert sorted(order[1:3]) == ["b", "c"]
        tasks = await runs.tasks(ALICE, run.id)
        assert states(tasks) == dict.fromkeys("abcd", "complete") | {"gate": "complete"}
        assert {t.name: t.exit_code for t in tasks if t.name != "gate"} == dict.fromkeys("abcd", 0)
        assert await runs.log(ALICE, run.id, "d") == "done\n"
        # Written: a fresh read of the database says the same.
        assert states(runs.store.tasks(run.id)) == states(tasks)
        assert runs.store.get(run.id).config == {"x": 1}
    finally:
        await runs.close()


async def test_a_failed_task_skips_its_descendants_and_fails_the_run(
    db_url: str, tmp_path: Path
) -> None:
    runs = service(db_url, tmp_path)
    try:
        flow = workflow(
            [
                task("a"),
                task("b", "echo preparing; echo 'disk full' >&2; exit 3"),
                task("c"),
                task("e"),
                task("d", "sleep 0.2"),
            ],
            {"b": ["a"], "c": ["b"], "e": ["c"]},
        )
        run = await runs.submit(flow, pipeline="demo@1.0", config={}, submitter="alice")
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.failed
        assert "task 'b' failed: exit code 3" in done.reason
        assert "disk full" in done.reason  # the log's tail
        tasks = {t.name: t for t in await runs.tasks(ALICE, run.id)}
        assert states(list(tasks.values())) == {
            "a": "complete",
            "b": "failed",
            "c": "skipped",
            "e": "skipped",
            "d": "complete",  # not downstream of b: it ran
        }
        assert tasks["b"].exit_code == 3
        assert tasks["c"].reason == "b failed"
    finally:
        await runs.close()


async def test_sigkill_is_retried_then_fails_the_run(tmp_path: Path) -> None:
    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        flow = workflow([task("k", "echo attempt; kill -9 $$", retry=2)])
        run = await runs.submit(flow, pipeline="demo@1.0", config={}, submitter="alice")
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.failed
        assert "killed by signal 9" in done.reason
        assert "attempt" in done.reason
        [k] = await runs.tasks(ALICE, run.id)
        assert k.attempts == 3
        assert k.exit_code is None
        # Each attempt kept its log.
        assert sorted(p.name for p in (Path(done.project) / "logs").iterdir()) == [
            "k.1.log",
            "k.2.log",
            "k.3.log",
        ]
    finally:
        await runs.close()


async def test_a_retry_that_succeeds(tmp_path: Path) -> None:
    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        cmd = "echo x >> tries; [ $(wc -l < tries) -ge 2 ]"
        run = await runs.submit(
            workflow([task("flaky", cmd, retry=3)]), pipeline="p@1", config={}, submitter="alice"
        )
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded
        [flaky] = await runs.tasks(ALICE, run.id)
        assert (flaky.state, flaky.attempts) == (TaskState.complete, 2)
    finally:
        await runs.close()


async def test_cancel_stops_running_tasks(tmp_path: Path) -> None:
    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        flow = workflow(
            [task("long", "echo $$ > pid; sleep 60"), task("after")], {"after": ["long"]}
        )
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        pid = Path(run.project) / "pid"
        for _ in range(500):
            if pid.exists() and pid.read_text():
                break
            await asyncio.sleep(0.02)
        with pytest.raises(NotFound):
            await runs.cancel(BOB, run.id)
        cancelling = await runs.cancel(ALICE, run.id)
        assert cancelling.state == RunState.cancelling
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.cancelled
        assert states(await runs.tasks(ALICE, run.id)) == {
            "long": "cancelled",
            "after": "cancelled",
        }
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid.read_text()), 0)
        with pytest.raises(Conflict):
            await runs.cancel(ALICE, run.id)
    finally:
        await runs.close()


async def test_retry_failed_keeps_complete_tasks_and_honours_reset(
    db_url: str, tmp_path: Path
) -> None:
    runs = service(db_url, tmp_path)
    try:
        flow = workflow(
            [
                task("prep", "echo prep >> ran"),
                task("setup", "echo setup >> ran"),
                # Runs again with its parents when it is reset.
                task("work", "echo work >> ran; test -e fixed", reset="parents"),
                task("report", "echo report >> ran"),
            ],
            {"setup": ["prep"], "work": ["setup"], "report": ["work"]},
        )
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        failed = await runs.wait(run.id, PATIENCE)
        assert failed.state == RunState.failed
        ran = Path(failed.project) / "ran"
        assert ran.read_text().split() == ["prep", "setup", "work"]
        with pytest.raises(NotFound):
            await runs.retry(BOB, run.id)
        (Path(failed.project) / "fixed").touch()
        again = await runs.retry(ALICE, run.id)
        assert again.state == RunState.queued
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded, done.reason
        assert done.reason == ""
        # prep stayed complete; setup ran again (work's reset: parents), then work, report.
        assert ran.read_text().split() == ["prep", "setup", "work", "setup", "work", "report"]
        assert states(await runs.tasks(ALICE, run.id)) == dict.fromkeys(
            ["prep", "setup", "work", "report"], "complete"
        )
    finally:
        await runs.close()


async def test_resume_keeps_complete_tasks_whose_identity_is_unchanged(tmp_path: Path) -> None:
    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        tasks = [
            task("a", "echo a >> ran"),
            task("b", "echo b1 >> ran"),
            task("c", "echo c >> ran"),
            task("other", "echo other >> ran"),
        ]
        edges = {"b": ["a"], "c": ["b"]}
        run = await runs.submit(
            workflow(tasks, edges), pipeline="p@1", config={}, submitter="alice"
        )
        first = await runs.wait(run.id, PATIENCE)
        assert first.state == RunState.succeeded
        ran = Path(first.project) / "ran"
        assert sorted(ran.read_text().split()) == ["a", "b1", "c", "other"]
        # Rendered again with b changed and a task added.
        changed = [
            tasks[0],
            task("b", "echo b2 >> ran"),
            tasks[2],
            tasks[3],
            task("new", "echo new >> ran"),
        ]
        with pytest.raises(NotFound):
            await runs.resume(BOB, run.id, workflow(changed, edges))
        await runs.resume(ALICE, run.id, workflow(changed, edges))
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded
        # a and other kept; b changed, so b and what follows it ran again; new ran.
        rerun = ran.read_text().split()[4:]
        assert sorted(rerun) == ["b2", "c", "new"]
        assert rerun.index("b2") < rerun.index("c")
        assert ran.read_text().split().count("a") == 1
        assert ran.read_text().split().count("other") == 1
        assert [t.name for t in await runs.tasks(ALICE, run.id)] == ["a", "b", "c", "other", "new"]
    finally:
        await runs.close()


async def test_resources_are_taken_whole_and_too_much_is_refused(tmp_path: Path) -> None:
    from strato.pipelines.resources import Resources

    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, resources=Resources(2, 1000))
    try:
        with pytest.raises(InvalidInput, match="'huge' asks for 3 CPUs; there are 2"):
            await runs.submit(
                workflow([task("huge", cpus=3)]), pipeline="p@1", config={}, submitter="alice"
            )
        with pytest.raises(InvalidInput, match="'fat' asks for 2000 MB"):
            await runs.submit(
                workflow([task("fat", mem_mb=2000)]), pipeline="p@1", config={}, submitter="alice"
            )
        assert await runs.list(ADMIN) == []  # nothing half-created
        # Three tasks of 2 CPUs each on 2 CPUs: one at a time, never overlapping.
        cmd = "echo start >> t; sleep 0.2; echo end >> t"
        flow = workflow([task(f"w{i}", cmd, cpus=2) for i in range(3)] + [task("small", "true")])
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded
        assert (Path(done.project) / "t").read_text().split() == ["start", "end"] * 3
    finally:
        await runs.close()


async def test_users_see_their_own_runs_and_admins_all(tmp_path: Path) -> None:
    runs = service(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        mine = await runs.submit(
            workflow([task("a")]), pipeline="p@1", config={}, submitter="alice"
        )
        theirs = await runs.submit(
            workflow([task("a")]), pipeline="p@1", config={}, submitter="bob"
        )
        await runs.wait(mine.id, PATIENCE)
        await runs.wait(theirs.id, PATIENCE)
        assert [r.id for r in await runs.list(ALICE)] == [mine.id]
        assert [r.id for r in await runs.list(ADMIN)] == [theirs.id, mine.id]
        with pytest.raises(NotFound):
            await runs.get(ALICE, theirs.id)
        with pytest.raises(NotFound):
            await runs.log(ALICE, theirs.id, "a")
        with pytest.raises(NotFound, match="no task 'zz'"):
            await runs.log(ALICE, mine.id, "zz")
        assert (await runs.get(ADMIN, mine.id)).submitter == "alice"
    finally:
        await runs.close()


async def test_the_service_as_settings_configure_it(tmp_path: Path) -> None:
    from strato.pipelines.service import open_runs
    from strato.pipelines.settings import PipelinesSettings
    from strato.settings import Settings
    from tests.pipelines.runs_helpers import open_store

    settings = Settings(data_dir=tmp_path / "data")
    pipelines = PipelinesSettings(cpus=1, mem_mb=100, retry_first=0.01)
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    runs = open_runs(store.engine, pipelines, settings)
    try:
        with pytest.raises(InvalidInput, match="asks for 2 CPUs; there are 1"):
            await runs.submit(
                workflow([task("two", cpus=2)]), pipeline="p@1", config={}, submitter="alice"
            )
        run = await runs.submit(
            workflow([task("t", "exit 1", retry=1)]), pipeline="p@1", config={}, submitter="a"
        )
        assert Path(run.project) == tmp_path / "data" / "pipelines" / "projects" / run.id
        done = await runs.wait(run.id, PATIENCE)
        assert done.state == RunState.failed
        assert [t.attempts for t in runs.store.tasks(run.id)] == [2]
    finally:
        await runs.close()
