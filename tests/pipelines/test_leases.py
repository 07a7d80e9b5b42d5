"""Several servers on one database: each drives the runs it holds a lease on; one killed
mid-run has its runs taken up by another once its leases run out (complete tasks kept);
one stopping gives its runs up at once; a cancel asked of a server that does not drive
the run reaches the one that does; two servers restarting the same run at once restart
it once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from strato.errors import Conflict
from strato.pipelines.leases import LeaseTerms
from strato.pipelines.records import RunState, TaskState
from strato.pipelines.store import runs as runs_table
from tests.pipelines.runs_helpers import (
    ALICE,
    PATIENCE,
    db_url,
    open_store,
    service,
    task,
    workflow,
)
from tests.pipelines.test_runs_restart import alive

pytestmark = pytest.mark.asyncio
__all__ = ["db_url"]

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from strato.pipelines.leases import LeaseTerms
    from tests.pipelines.runs_helpers import service, task, workflow

    B = "echo b >> ran; [ -e b.pid ] || { echo $$ > b.pid; sleep 60; }"

    async def main():
        runs = service(sys.argv[1], Path(sys.argv[2]), terms=LeaseTerms("a", seconds=1.5))
        await runs.start()
        flow = workflow(
            [task("a", "echo a >> ran"), task("b", B), task("c", "echo c >> ran")],
            {"b": ["a"], "c": ["b"]},
        )
        run = await runs.submit(flow, pipeline="p@1", config={}, submitter="alice")
        print(run.id, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def lease_of(url: str, run_id: str) -> tuple[str | None, str | None]:
    engine = open_store(url).engine
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(runs_table.c.lease_node, runs_table.c.lease_holder).where(
                runs_table.c.id == run_id
            )
        ).one()
    engine.dispose()
    return row.lease_node, row.lease_holder


async def test_another_server_takes_up_the_runs_of_one_killed(db_url: str, tmp_path: Path) -> None:
    # Server b runs beside a from the start, on the same database; it does not touch a's
    # run while a renews its lease.
    b = service(db_url, tmp_path, terms=LeaseTerms("b", seconds=1.5))
    assert await b.start() == []
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, db_url, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    store = open_store(db_url)
    try:
        assert server.stdout is not None
        run_id = server.stdout.readline().strip()
        deadline = time.monotonic() + PATIENCE
        while True:  # until the database says b runs
            tasks = {t.name: t for t in store.tasks(run_id)}
            if tasks and tasks["b"].state == TaskState.running and tasks["b"].backend_id:
                break
            assert time.monotonic() < deadline, tasks
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # longer than a lease: a renewed it, b left it alone
        assert lease_of(db_url, run_id)[0] == "a"
        assert b._drivers == {}
        server.send_signal(signal.SIGKILL)
        server.wait()
    finally:
        if server.poll() is None:
            server.kill()
    project = Path(store.get(run_id).project)
    left_behind = int((project / "b.pid").read_text())
    try:
        deadline = time.monotonic() + PATIENCE
        # Taken up once a's lease has run out: driven by b, or already done by it.
        while run_id not in b._driving and store.get(run_id).state == RunState.running:
            assert time.monotonic() < deadline, lease_of(db_url, run_id)
            await asyncio.sleep(0.01)
        assert lease_of(db_url, run_id)[0] == "b"
        done = await b.wait(run_id, PATIENCE)
        assert done.state == RunState.succeeded, done.reason
        assert not alive(left_behind)
        assert (project / "ran").read_text().split() == ["a", "b", "b", "c"]
        finished = {t.name: t for t in await b.tasks(ALICE, run_id)}
        assert finished["a"].attempts == 1
    finally:
        await b.close()


LONG = "sleep 60"


async def test_a_cancel_asked_of_another_server_reaches_the_run(
    db_url: str, tmp_path: Path
) -> None:
    a = service(db_url, tmp_path, terms=LeaseTerms("a", seconds=0.9))
    b = service(db_url, tmp_path, terms=LeaseTerms("b", seconds=0.9))
    await a.start()
    await b.start()
    try:
        run = await a.submit(
            workflow([task("t", LONG), task("u")], {"u": ["t"]}),
            pipeline="p@1",
            config={},
            submitter="alice",
        )
        deadline = time.monotonic() + PATIENCE
        while (await b.get(ALICE, run.id)).state != RunState.running:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        asked = await b.cancel(ALICE, run.id)
        assert asked.state == RunState.cancelling
        done = await a.wait(run.id, PATIENCE)  # well before the task's minute
        assert done.state == RunState.cancelled
        states = {t.name: t.state for t in await b.tasks(ALICE, run.id)}
        assert states == {"t": TaskState.cancelled, "u": TaskState.cancelled}
        with pytest.raises(Conflict, match="has ended"):
            await b.cancel(ALICE, run.id)
    finally:
        await a.close()
        await b.close()


async def test_a_server_stopping_gives_its_runs_up_for_another_at_once(
    db_url: str, tmp_path: Path
) -> None:
    a = service(db_url, tmp_path, terms=LeaseTerms("a", seconds=600))
    await a.start()
    run = await a.submit(
        workflow([task("t", "echo $$ > t.pid; sleep 60")]),
        pipeline="p@1",
        config={},
        submitter="alice",
    )
    pid_file = Path(run.project) / "t.pid"
    deadline = time.monotonic() + PATIENCE
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await a.close()
    # Its lease of ten minutes is given up: nobody holds the run now.
    assert lease_of(db_url, run.id) == (None, None)
    b = service(db_url, tmp_path, terms=LeaseTerms("b", seconds=600))
    try:
        assert await b.start() == [run.id]
        await b.cancel(ALICE, run.id)
        done = await b.wait(run.id, PATIENCE)
        assert done.state == RunState.cancelled
        assert not alive(int(pid_file.read_text()))  # the task b followed was stopped
    finally:
        await b.close()


async def test_two_servers_retrying_a_run_at_once_retry_it_once(
    db_url: str, tmp_path: Path
) -> None:
    a = service(db_url, tmp_path, terms=LeaseTerms("a"))
    b = service(db_url, tmp_path, terms=LeaseTerms("b"))
    await a.start()
    await b.start()
    try:
        run = await a.submit(
            workflow([task("t", "echo t >> ran; test -e ok")]),
            pipeline="p@1",
            config={},
            submitter="alice",
        )
        assert (await a.wait(run.id, PATIENCE)).state == RunState.failed
        (Path(run.project) / "ok").touch()
        answers = await asyncio.gather(
            a.retry(ALICE, run.id), b.retry(ALICE, run.id), return_exceptions=True
        )
        refused = [x for x in answers if isinstance(x, Conflict)]
        assert len(refused) == 1, answers
        assert "restarted meanwhile" in str(refused[0]) or "cancel it first" in str(refused[0])
        winner = a if answers[0] is not refused[0] else b
        done = await winner.wait(run.id, PATIENCE)
        assert done.state == RunState.succeeded
        assert (Path(run.project) / "ran").read_text().split() == ["t", "t"]
    finally:
        await a.close()
        await b.close()
