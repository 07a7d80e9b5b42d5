"""No-op jobs: strato's job engine (local and celery executors) against plain Celery.

Three systems in one run, each measured the same two ways, and the floor:

- **drain**: ``--count`` no-op jobs (default 10,000) sent at once and all waited for;
  jobs per second from the first submit to the last finish.
- **round trip**: ``--samples`` jobs one at a time (default 1,000), submit then wait; the
  p50, p95 and p99 of the milliseconds from submitting to holding the finished result.

The systems:

1. **strato, local executor**: ``--workers`` worker processes over a fresh SQLite database
   (``--database-url`` for another). The drain's jobs are submitted by ``--submitters``
   threads (clients of the web app submit concurrently), each awaited with
   ``JobEngine.wait`` in one event loop.
2. **plain Celery, the reference**: a Celery app of one no-op task with Redis (``--broker-
   url``) as broker and result backend, Celery's default way to get a result, and
   Celery's defaults otherwise (prefork pool, prefetch multiplier 4, early acks, JSON);
   its worker is a subprocess limited to ``--workers`` processes (``--concurrency``; on a
   2-core machine Celery's default is 2 as well). Round trip: ``noop.delay().get()``;
   drain: ``delay()`` ``--count`` times from one thread, then ``ResultSet.get()`` (Celery's
   native join on Redis). Results expire after 10 minutes (not the default day), the only
   setting changed besides the queue: the bench shares its Redis.
3. **strato, celery executor**, on the same Redis: a ``strato worker`` subprocess of
   ``--workers`` processes, the engine's job state in the same kind of fresh database as
   (1); measured as (1).

4. **the floor** (round trips only): a job's least work done directly, without an engine:
   a row inserted and committed, a message to a worker process and back over pipes, the
   row updated and committed, on the same kind of database. What a durable engine with
   worker processes cannot go below on this machine.

All four are up at once (each warmed up by 20 round trips), on queues of their own. The
drains run one system at a time; the round trips are interleaved in ``--rounds`` rounds
(default 10), the order turning each round, so that on a shared machine whose load swings
each system meets the same swings. Workers are killed at the end. Any job that does not
succeed fails the run; the load average is printed as it goes. Then the ratios: strato
local / Celery for the round trip p50 (issue 14's goal: <= 0.2) and for the drain, and
strato's celery executor / Celery likewise, and strato local / the floor.

    .venv/bin/python bench/jobs.py [--count 10000] [--samples 1000] [--workers 2]
        [--rounds 10] [--systems local,celery,strato-celery] [--broker-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.context import Context
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.settings import LogSettings, Settings

NOOP = "strato.jobs.demo.tasks:noop"
CELERY_NOOP = "strato.bench.noop"
SYSTEMS = ("local", "celery", "strato-celery", "floor")
WARMUP = 20
PATIENCE = 600.0  # seconds any one wait may take: a bound against hanging


@dataclass
class Figures:
    name: str
    drain: float  # jobs/s
    took: list[float]  # round trips, ms, sorted

    def pct(self, q: float) -> float:
        return self.took[min(len(self.took) - 1, int(len(self.took) * q))]

    @property
    def p50(self) -> float:
        return statistics.median(self.took)

    def line(self, count: int, samples: int) -> str:
        drained = f"{count} no-op jobs: {self.drain:,.0f} jobs/s" if self.drain else "-"
        return (
            f"{self.name}:\n"
            f"  drain:      {drained}\n"
            f"  round trip: {samples} one at a time: p50 {self.p50:.2f} ms, "
            f"p95 {self.pct(0.95):.2f} ms, p99 {self.pct(0.99):.2f} ms"
        )


# strato's engine, whatever its executor ------------------------------------------------


def submit(engine: JobService) -> str:
    return engine.submit(task=NOOP, inputs={}, owner="bench", process_id="noop").id


async def drain(engine: JobService, count: int, submitters: int) -> float:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(submitters) as pool:
        start = time.perf_counter()

        async def one() -> JobStatus:
            job_id = await loop.run_in_executor(pool, submit, engine)
            return (await engine.wait(job_id, PATIENCE)).status

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
        record = await engine.wait(submit(engine), PATIENCE)
        took.append((time.perf_counter() - start) * 1000)
        if record.status != JobStatus.successful:
            sys.exit(f"a job did not succeed: {record}")
    return took


@dataclass
class System:
    """One system under test, up: a drain of ``count`` jobs (jobs/s) and ``n`` round trips
    (ms each)."""

    name: str
    drain: Callable[[int], float]
    round_trips: Callable[[int], list[float]]


@contextlib.contextmanager
def open_strato(
    name: str, jobs: dict[str, Any], args: argparse.Namespace, tmp: Path
) -> Iterator[System]:
    settings = Settings(
        data_dir=tmp,
        database_url=args.database_url,
        log=LogSettings(access=False),
        jobs=jobs,
    )
    ctx = Context.open(settings)
    ctx.migrate()
    engine = open_jobs(ctx.sessions, settings)
    engine.start()
    try:
        yield System(
            f"{name} ({ctx.engine.url.get_backend_name()})",
            lambda count: asyncio.run(drain(engine, count, args.submitters)),
            lambda n: asyncio.run(round_trips(engine, n)),
        )
    finally:
        engine.close()
        ctx.close()


# Celery workers as subprocesses --------------------------------------------------------


@contextlib.contextmanager
def worker(argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """A worker process (its pool with it, in a session of its own) for the block."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def delete_queues(broker_url: str, *names: str) -> None:
    from kombu import Connection, Queue

    with Connection(broker_url) as conn:
        for name in names:
            with contextlib.suppress(Exception):  # gone already, or never declared
                Queue(name, channel=conn.channel()).delete()


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


# plain Celery, the reference -----------------------------------------------------------


def celery_app(broker_url: str, queue: str) -> Any:
    from celery import Celery

    app = Celery("strato-bench", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(task_default_queue=queue, result_expires=600)
    app.task(name=CELERY_NOOP)(celery_noop)
    return app


def celery_noop() -> None:
    """Nothing: what Celery itself costs per task."""


def celery_worker_main(broker_url: str, queue: str, concurrency: int) -> None:
    """This script run as the reference's worker (``--celery-worker``)."""
    app = celery_app(broker_url, queue)
    argv = ["worker", "--loglevel", "WARNING", "--concurrency", str(concurrency)]
    app.worker_main([*argv, "--hostname", f"{queue}@%h"])


@contextlib.contextmanager
def open_celery(args: argparse.Namespace, tmp: Path) -> Iterator[System]:
    from celery.result import ResultSet

    queue = f"strato.bench.celery.{secrets.token_hex(6)}"
    app = celery_app(args.broker_url, queue)
    noop: Any = app.tasks[CELERY_NOOP]
    argv = [sys.executable, str(Path(__file__).resolve()), "--celery-worker"]
    argv += ["--broker-url", args.broker_url, "--queue", queue, "--workers", str(args.workers)]

    def drain(count: int) -> float:
        start = time.perf_counter()
        results = ResultSet([noop.delay() for _ in range(count)])
        results.get(timeout=PATIENCE)
        rate = count / (time.perf_counter() - start)
        if not results.successful():
            sys.exit("Celery: some tasks did not succeed")
        return rate

    def round_trips(n: int) -> list[float]:
        took = []
        for _ in range(n):
            start = time.perf_counter()
            noop.delay().get(timeout=PATIENCE)
            took.append((time.perf_counter() - start) * 1000)
        return took

    try:
        with worker(argv, child_env(), tmp / "celery-worker.log"):
            yield System(
                f"plain Celery {celery_version()} (Redis broker and results)", drain, round_trips
            )
    finally:
        delete_queues(args.broker_url, queue)


def celery_version() -> str:
    import celery

    return str(celery.__version__)


# strato's celery executor --------------------------------------------------------------


@contextlib.contextmanager
def open_strato_celery(args: argparse.Namespace, tmp: Path) -> Iterator[System]:
    queue = f"strato.bench.jobs.{secrets.token_hex(6)}"
    env = child_env(
        STRATO_DATA_DIR=str(tmp / "worker"),
        STRATO_JOBS_EXECUTOR="celery",
        STRATO_JOBS_BROKER_URL=args.broker_url,
        STRATO_JOBS_QUEUE=queue,
    )
    argv = [
        sys.executable,
        "-m",
        "strato",
        "worker",
        "--loglevel",
        "WARNING",
        "--concurrency",
        str(args.workers),
        "--hostname",
        f"{queue}@%h",
    ]
    jobs = {
        "executor": "celery",
        "broker_url": args.broker_url,
        "queue": queue,
        "workers": args.workers,
    }
    try:
        with worker(argv, env, tmp / "strato-worker.log"):
            (tmp / "server").mkdir()
            with open_strato("strato, celery executor", jobs, args, tmp / "server") as system:
                yield system
    finally:
        delete_queues(args.broker_url, queue)


# the run -------------------------------------------------------------------------------


# The floor: what a durable job costs at least, done directly -----------------------------

ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


@contextlib.contextmanager
def open_floor(args: argparse.Namespace, tmp: Path) -> Iterator[System]:
    """A job's least work, without an engine: its row inserted and committed, a message to
    a worker process and its answer back over pipes, the row updated and committed (the
    same SQLite and settings strato opens). Round trips only: a drain is what an engine
    adds, concurrency."""
    from sqlalchemy import text

    from strato import db

    url = args.database_url or f"sqlite:///{tmp / 'floor.db'}"
    engine = db.create_engine(url)
    table = f"floor_{secrets.token_hex(4)}"
    with engine.begin() as c:
        c.execute(text(f"CREATE TABLE {table} (id VARCHAR(32) PRIMARY KEY, status VARCHAR(16))"))
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    stdin, stdout = proc.stdin, proc.stdout
    if stdin is None or stdout is None:
        sys.exit("the floor's worker has no pipes")
    # The table's name is the bench's own, not input: no injection to fear.
    insert = text(f"INSERT INTO {table} (id, status) VALUES (:id, 'accepted')")  # noqa: S608
    update = text(f"UPDATE {table} SET status = 'successful' WHERE id = :id")  # noqa: S608

    def round_trips(n: int) -> list[float]:
        took = []
        for _ in range(n):
            job = secrets.token_hex(16)
            start = time.perf_counter()
            with engine.begin() as c:
                c.execute(insert, {"id": job})
            stdin.write(job + "\n")
            if stdout.readline().strip() != job:
                sys.exit("the floor's worker answered something else")
            with engine.begin() as c:
                c.execute(update, {"id": job})
            took.append((time.perf_counter() - start) * 1000)
        return took

    try:
        yield System(
            "floor: a row committed, a pipe to a process and back, committed",
            lambda n: 0.0,
            round_trips,
        )
    finally:
        stdin.close()
        proc.wait(timeout=30)
        with engine.begin() as c:
            c.execute(text(f"DROP TABLE {table}"))
        engine.dispose()


def ratio(ours: Figures, theirs: Figures) -> str:
    return (
        f"{ours.name.split(' (')[0]} / Celery: round trip p50 "
        f"{ours.p50:.2f} / {theirs.p50:.2f} ms = {ours.p50 / theirs.p50:.3f}; "
        f"drain {ours.drain:,.0f} / {theirs.drain:,.0f} jobs/s = {ours.drain / theirs.drain:.2f}x"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="jobs per drain")
    parser.add_argument("--samples", type=int, default=1000, help="round trips, one at a time")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, every system")
    parser.add_argument(
        "--rounds", type=int, default=10, help="round trips interleaved in this many rounds"
    )
    parser.add_argument("--submitters", type=int, default=8, help="strato drains' threads")
    parser.add_argument("--database-url", default=None, help="strato's; a fresh SQLite if none")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="any of " + ",".join(SYSTEMS))
    parser.add_argument("--celery-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.celery_worker:
        celery_worker_main(args.broker_url, args.queue, args.workers)
        return
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := set(systems) - set(SYSTEMS):
        parser.error(f"unknown systems: {sorted(unknown)}")

    print(f"load average at start: {load()}", flush=True)
    found: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        up: dict[str, System] = {}
        for system in systems:
            where = Path(tmp) / system
            where.mkdir()
            if system == "local":
                jobs = {"executor": "local", "workers": args.workers}
                opened = open_strato("strato, local executor", jobs, args, where)
            elif system == "celery":
                opened = open_celery(args, where)
            elif system == "floor":
                opened = open_floor(args, where)
            else:
                opened = open_strato_celery(args, where)
            up[system] = stack.enter_context(opened)
            up[system].round_trips(WARMUP)  # its workers up and the task imported
        # Drains one system at a time: each loads the whole machine.
        drains = {}
        for system, it in up.items():
            drains[system] = it.drain(args.count)
            if not drains[system]:
                continue
            print(f"{it.name}: drain {drains[system]:,.0f} jobs/s; load {load()}", flush=True)
        # Round trips interleaved in rounds, the order turning each round: on a shared
        # machine whose load swings, every system meets the same swings.
        took: dict[str, list[float]] = {system: [] for system in up}
        rounds = max(1, min(args.rounds, args.samples))
        order = list(up)
        for r in range(rounds):
            n = args.samples * (r + 1) // rounds - args.samples * r // rounds
            for system in order[r % len(order) :] + order[: r % len(order)]:
                took[system] += up[system].round_trips(n)
        print(f"round trips done in {rounds} rounds; load {load()}")
        for system, it in up.items():
            found[system] = Figures(it.name, drains[system], sorted(took[system]))
            print(found[system].line(args.count, args.samples))
    print(f"{args.workers} worker processes each; broker {args.broker_url}")
    if "celery" in found:
        for system in ("local", "strato-celery"):
            if system in found:
                print(ratio(found[system], found["celery"]))
    if "local" in found:
        local, celery = found["local"], "celery" in found
        if "floor" in found:
            floor = found["floor"].p50
            print(
                f"strato, local executor / the floor: round trip p50 {local.p50:.2f} / "
                f"{floor:.2f} ms = {local.p50 / floor:.2f}x"
                + (
                    f"; Celery / the floor {found['celery'].p50 / floor:.2f}x; the goal's "
                    f"0.2 x Celery = {0.2 * found['celery'].p50:.2f} ms"
                    if celery
                    else ""
                )
            )
        print(
            f"goals (issue 14): local drain {local.drain:,.0f} jobs/s (>= 1,000), "
            f"round trip p50 {local.p50:.2f} ms (<= 5)"
            + (f", p50 / Celery's {local.p50 / found['celery'].p50:.3f} (<= 0.2)" if celery else "")
        )


if __name__ == "__main__":
    main()
