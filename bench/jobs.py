"""The job engine with the local executor: no-op jobs drained, and submit-to-complete.

Two figures, on an engine of ``--workers`` worker processes over a fresh SQLite database
(``--database-url`` for another):

- **drain**: ``--count`` no-op jobs (default 10,000) submitted by ``--submitters``
  threads at once (clients of the web app submit concurrently), each waited for with
  ``JobEngine.wait`` in one event loop; jobs per second from the first submit to the last
  finish.
- **round trip**: ``--samples`` jobs one at a time, submit then ``wait``; the p50 and p99
  of the milliseconds from calling submit to wait returning the finished record.

Every job must finish ``successful``; any other status fails the run. The Celery
reference (``delay().get()`` on the same broker) is not measured here yet.

    .venv/bin/python bench/jobs.py [--count 10000] [--samples 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from strato.context import Context
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.settings import Settings

NOOP = "strato.jobs.demo.tasks:noop"


def submit(engine: JobService) -> str:
    return engine.submit(task=NOOP, inputs={}, owner="bench", process_id="noop").id


async def drain(engine: JobService, count: int, submitters: int) -> float:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(submitters) as pool:
        start = time.perf_counter()

        async def one() -> JobStatus:
            job_id = await loop.run_in_executor(pool, submit, engine)
            return (await engine.wait(job_id, 600)).status

        statuses = await asyncio.gather(*(one() for _ in range(count)))
        elapsed = time.perf_counter() - start
    bad = [s for s in statuses if s != JobStatus.successful]
    if bad:
        sys.exit(f"{len(bad)} jobs did not succeed: {sorted(set(bad))}")
    return count / elapsed


async def round_trips(engine: JobService, samples: int) -> list[float]:
    took: list[float] = []
    for _ in range(samples):
        start = time.perf_counter()
        record = await engine.wait(submit(engine), 60)
        took.append((time.perf_counter() - start) * 1000)
        if record.status != JobStatus.successful:
            sys.exit(f"a job did not succeed: {record}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--submitters", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=args.database_url, jobs={"workers": args.workers}
        )
        ctx = Context.open(settings)
        ctx.migrate()
        engine = open_jobs(ctx.sessions, settings)
        engine.start()
        try:
            asyncio.run(round_trips(engine, 20))  # the workers up and the task imported
            rate = asyncio.run(drain(engine, args.count, args.submitters))
            took = sorted(asyncio.run(round_trips(engine, args.samples)))
        finally:
            engine.close()
            ctx.close()
    p50 = statistics.median(took)
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    print(f"local executor, {args.workers} workers, {ctx.engine.url.get_backend_name()}")
    print(f"drain:      {args.count} no-op jobs, {args.submitters} submitters: {rate:,.0f} jobs/s")
    print(f"round trip: {args.samples} jobs one at a time: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
