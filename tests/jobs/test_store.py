"""Jobs on each database engine: the schema, writes in batches, order and paging, and a
restart on the same database."""

from __future__ import annotations

import asyncio

from strato.job_engine import JobStatus
from tests.jobs.conftest import PATIENCE, MakeEngine, until

T = "tests.jobs.tasks:"


def test_jobs_run_listed_and_recovered_on_each_database(
    database_url: str, make_engine: MakeEngine
) -> None:
    engine = make_engine(database_url, retries=0)
    ids = [
        engine.submit(task=T + "echo", inputs={"i": i, "s": "é"}, owner="o", process_id="p").id
        for i in range(30)
    ]
    done = [asyncio.run(engine.wait(job_id, PATIENCE)) for job_id in ids]
    assert {d.status for d in done} == {JobStatus.successful}
    assert [d.results["echo"]["i"] for d in done if d.results] == list(range(30))
    # Written, not only remembered: the database's rows are the records.
    assert [engine.store.get(d.id) for d in done] == done
    listed = [j.id for j in engine.store.list(limit=100)]
    assert listed == list(reversed(ids))
    pages = [j.id for j in engine.store.list(limit=10, after=ids[20])]
    assert pages == list(reversed(ids[10:20]))

    running = engine.submit(task=T + "deaf", inputs={}, owner="o", process_id="p")
    until(engine, running.id, lambda r: r.status == JobStatus.running)
    engine.close()
    restarted = make_engine(database_url, retries=0)
    failed = restarted.get(running.id)
    assert failed.status == JobStatus.failed
    assert failed.error == "the server stopped while it ran (attempt 1 of 1)"
    assert restarted.dismiss(ids[0]).status == JobStatus.dismissed
    assert len(restarted.list(limit=100)) == 30
