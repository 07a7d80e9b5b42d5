"""Pipeline runs on the local backend against the floor: the same commands run directly.

Three measures, each against its floor in the same run:

- **chain**: ``--chain`` no-op tasks (default 100), each ``after`` the one before, as one
  run: the seconds from ``submit`` to the run's end, and the milliseconds per task the
  runner adds over the floor (the same ``bash -c true`` run one after another with
  ``subprocess.run``). Issue 15's goal: <= 20 ms added per task.
- **independent**: ``--count`` no-op tasks (default 1,000) with no dependencies, as one
  run: tasks per second from ``submit`` to the run's end, and the floor's rate (the same
  commands with ``subprocess.run`` from as many threads as the runner has CPUs to hand
  out, ``--cpus``, each task taking one). Goals: >= 200 tasks/s and >= 0.5x the floor.
  Also the floor with each command's output into a new file, as the runner's logs are:
  what of the gap is the log files (not part of the goal's floor).
- **submit to running**: ``--samples`` runs of one task (default 20), one at a time: the
  milliseconds from calling ``PipelineRuns.submit`` to its task's process started (the
  task's record ``running`` with its pid; polled every 0.5 ms), and to the run ended.

The runner is strato's run service as the server builds it (``PipelineRuns`` with the
local backend, a ``Resources`` of ``--cpus`` CPUs, every state change written by the
writer thread) on a fresh SQLite database (``--database-url`` for another); each task's
output goes to its log file, as in a server. The floor's commands write to /dev/null:
the log files are the runner's cost. Chain and independent runs are interleaved in
``--rounds`` rounds (default 3) with their floors, the order turning each round, so that
on a shared machine both meet the same swings; medians of the rounds are reported, with
the load average as it goes. Any task that does not complete fails the bench.

TODO (issue 15): the goal "submit-to-RUNNING over WES <= 1 s" is measured here through
``PipelineRuns.submit`` in-process, not over HTTP: measure it through ``POST
/ga4gh/wes/v1/runs`` once the WES API exists.

    .venv/bin/python bench/pipelines.py [--chain 100] [--count 1000] [--samples 20]
        [--rounds 3] [--cpus 2] [--database-url URL] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from strato.auth import Principal, Scope
from strato.db import create_engine
from strato.db.migrate import History, upgrade_history
from strato.pipelines.backends.local import LocalBackend
from strato.pipelines.model.workflow import TaskSpec, Workflow
from strato.pipelines.records import RunState, TaskState
from strato.pipelines.resources import Resources
from strato.pipelines.service import PipelineRuns
from strato.pipelines.store import RunStore
from strato.retry import Backoff

CMD = "true"
PATIENCE = 600.0  # seconds any one run may take: a bound against hanging
ADMIN = Principal(user="bench", scopes=frozenset({Scope.ADMIN}))


def workflow(count: int, chained: bool) -> Workflow:
    names = [f"t{i:05d}" for i in range(count)]
    tasks = {n: TaskSpec(name=n, cmd=CMD, identity=n, directives={"name": n}) for n in names}
    parents = {n: frozenset([names[i - 1]] if chained and i else []) for i, n in enumerate(names)}
    return Workflow(tasks=tasks, parents=parents)


# strato's runner -------------------------------------------------------------------------


async def run_once(runs: PipelineRuns, flow: Workflow) -> float:
    """Seconds from submit to the run's end (its last state written)."""
    start = time.perf_counter()
    run = await runs.submit(flow, pipeline="bench@1", config={}, submitter="bench")
    ended = await runs.wait(run.id, PATIENCE)
    elapsed = time.perf_counter() - start
    if ended.state != RunState.succeeded:
        sys.exit(f"run {run.id} {ended.state.value}: {ended.reason}")
    return elapsed


async def submit_to_running(runs: PipelineRuns, samples: int) -> tuple[list[float], list[float]]:
    """Per run of one task: ms to its process started, ms to the run ended."""
    flow = workflow(1, False)
    to_running: list[float] = []
    to_end: list[float] = []
    for _ in range(samples):
        start = time.perf_counter()
        run = await runs.submit(flow, pipeline="bench@1", config={}, submitter="bench")
        while True:
            (task,) = await runs.tasks(ADMIN, run.id)
            if task.state != TaskState.pending and task.backend_id is not None:
                break
            if task.state not in (TaskState.pending, TaskState.running):
                break  # ended before it was seen running: its start is no later
            await asyncio.sleep(0.0005)
        to_running.append((time.perf_counter() - start) * 1000)
        ended = await runs.wait(run.id, PATIENCE)
        to_end.append((time.perf_counter() - start) * 1000)
        if ended.state != RunState.succeeded:
            sys.exit(f"run {run.id} {ended.state.value}: {ended.reason}")
    return to_running, to_end


# the floor ---------------------------------------------------------------------------------


def floor_run(count: int, concurrency: int, logs: Path | None = None) -> float:
    """Seconds to run ``count`` times ``bash -c CMD`` directly, ``concurrency`` at a time;
    the output into a new file in ``logs`` per command if given, else to /dev/null."""

    def one(i: int) -> None:
        if logs is None:
            subprocess.run(["bash", "-c", CMD], stdout=subprocess.DEVNULL, check=True)
            return
        with open(logs / f"{i}.log", "wb") as out:
            subprocess.run(["bash", "-c", CMD], stdout=out, stderr=subprocess.STDOUT, check=True)

    start = time.perf_counter()
    if concurrency == 1:
        for i in range(count):
            one(i)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(count)))
    return time.perf_counter() - start


# the run -----------------------------------------------------------------------------------


def fresh(path: Path) -> Path:
    """An empty directory at ``path``: each round's logs are files created anew."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    url = args.database_url or f"sqlite:///{tmp / 'runs.db'}"
    engine = create_engine(url)
    upgrade_history(engine, History("pipelines", "strato.pipelines.migrations"))
    runs = PipelineRuns(
        RunStore(engine),
        LocalBackend(kill_grace=1.0),
        projects=tmp / "projects",
        resources=Resources(cpus=args.cpus, mem_mb=1024 * 1024),
        backoff=Backoff(0.1, 1.0),
    )
    chain, independent = workflow(args.chain, True), workflow(args.count, False)
    profiler = cProfile.Profile() if args.profile else None
    try:
        await run_once(runs, workflow(20, False))  # warm up: the database, the imports
        measures: dict[str, Callable[[], Awaitable[float]]] = {
            "chain": lambda: run_once(runs, chain),
            "chain floor": lambda: asyncio.to_thread(floor_run, args.chain, 1),
            "independent": lambda: run_once(runs, independent),
            "independent floor": lambda: asyncio.to_thread(floor_run, args.count, args.cpus),
            "independent floor, logs": lambda: asyncio.to_thread(
                floor_run, args.count, args.cpus, fresh(tmp / "floor-logs")
            ),
        }
        took: dict[str, list[float]] = {name: [] for name in measures}
        order = list(measures)
        for r in range(args.rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                if profiler is not None and "floor" not in name:
                    profiler.enable()
                took[name].append(await measures[name]())
                if profiler is not None:
                    profiler.disable()
            print(
                f"round {r + 1}: "
                + ", ".join(f"{n} {took[n][-1]:.3f} s" for n in order)
                + f"; load {load()}",
                flush=True,
            )
        to_running, to_end = await submit_to_running(runs, args.samples)
    finally:
        await runs.close()
        engine.dispose()
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the runner's rounds written to {args.profile}")

    med = {name: statistics.median(values) for name, values in took.items()}
    backend = engine.url.get_backend_name()
    print(f"\nmedians of {args.rounds} rounds; {args.cpus} CPUs handed out; database {backend}")
    added = (med["chain"] - med["chain floor"]) / args.chain * 1000
    print(
        f"chain of {args.chain}: runner {med['chain']:.3f} s "
        f"({med['chain'] / args.chain * 1000:.2f} ms per task), floor {med['chain floor']:.3f} s "
        f"({med['chain floor'] / args.chain * 1000:.2f} ms per task); "
        f"added {added:.2f} ms per task (goal <= 20); runner / floor "
        f"{med['chain'] / med['chain floor']:.2f}x"
    )
    rate, floor_rate = args.count / med["independent"], args.count / med["independent floor"]
    print(
        f"{args.count} independent: runner {rate:,.0f} tasks/s ({med['independent']:.3f} s), "
        f"floor {floor_rate:,.0f} tasks/s ({med['independent floor']:.3f} s); "
        f"runner / floor {rate / floor_rate:.2f}x (goals: >= 200 tasks/s, >= 0.5x)"
    )
    logged = args.count / med["independent floor, logs"]
    print(
        f"  the floor with a log file per command: {logged:,.0f} tasks/s; runner / it "
        f"{rate / logged:.2f}x (the runner writes every task's output to its log)"
    )
    running = sorted(to_running)
    print(
        f"submit to running, {args.samples} runs of one task: p50 "
        f"{statistics.median(running):.2f} ms, max {running[-1]:.2f} ms (goal <= 1,000 over WES; "
        f"in-process here); submit to the run ended p50 {statistics.median(to_end):.2f} ms"
    )
    print(
        "goals (issue 15): "
        f"added per task {added:.2f} ms (<= 20) {'met' if added <= 20 else 'NOT met'}; "
        f"{rate:,.0f} tasks/s (>= 200) {'met' if rate >= 200 else 'NOT met'}; "
        f"{rate / floor_rate:.2f}x the floor (>= 0.5) "
        f"{'met' if rate / floor_rate >= 0.5 else 'NOT met'}; "
        f"submit to running {statistics.median(running):.1f} ms (<= 1,000, in-process) "
        f"{'met' if statistics.median(running) <= 1000 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", type=int, default=100, help="sequential tasks in one run")
    parser.add_argument("--count", type=int, default=1000, help="independent tasks in one run")
    parser.add_argument("--samples", type=int, default=20, help="submit-to-running samples")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of runs and floors")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 1, help="CPUs the runner hands out"
    )
    parser.add_argument("--database-url", default=None, help="a fresh SQLite if none")
    parser.add_argument("--profile", default=None, help="cProfile the runner's runs into FILE")
    args = parser.parse_args()
    print(f"load average at start: {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
