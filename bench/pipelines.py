"""Pipeline runs on the local backend against the floor: the same commands run directly.

Four measures, each against its floor in the same run:

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
- **submit to running, in-process**: ``--samples`` runs of one task (default 20), one at
  a time: the milliseconds from calling ``PipelineRuns.submit`` to its task's process
  started (the task's record ``running`` with its pid; polled every 0.5 ms), and to the
  run ended.
- **submit to running over WES**: ``strato api`` in a process of its own on loopback (as
  ``bench/processes.py`` starts it: a fresh data directory, SQLite, the local backend with
  ``--cpus``), a pipeline ``bench@1.0`` of one task (``touch started; sleep 0.2``), a
  user with a token of scope ``run``. ``--samples`` times, one at a time, a WES client
  (httpx, one keep-alive connection, Bearer token) POSTs the multipart form to
  ``/ga4gh/wes/v1/runs`` (``workflow_type`` JETSTREAM, ``workflow_type_version`` 1.0,
  ``workflow_url`` bench@1.0, ``workflow_params``) and polls ``/runs/{id}/status`` every
  ``--poll-ms`` (default 2) until it is RUNNING (or past it): the milliseconds from the
  POST; then until the task's process has run (its ``started`` file in the run's project
  directory, looked for every 1 ms): the milliseconds to the task running. Issue 15's goal:
  <= 1 s. The floor: the same exchange (the same form POSTed, then one status GET) with a
  bare Starlette app on the same uvicorn that parses the form and answers constant JSON.

The runner is strato's run service as the server builds it (``PipelineRuns`` with the
local backend, a ``Resources`` of ``--cpus`` CPUs, every state change written by the
writer thread) on a fresh SQLite database (``--database-url`` for another), driven on the
event loop ``strato api`` drives it on: uvloop where it is installed, as uvicorn chooses
(``--loop asyncio`` for Python's own). Each task's output goes to its log file, as in a
server; the floor's commands write to /dev/null: the log files are the runner's cost.
Chain and independent runs are interleaved in ``--rounds`` rounds (default 5) with their
floors, the order turning each round, so that on a shared machine both meet the same
swings; medians of the rounds are reported, with the load average as it goes. Any task
that does not complete fails the bench.

Nothing is deleted while it measures: on ext4 without a journal (this machine's), a new
file's inode is looked for past every inode deleted in the last minutes, so creating a
file costs up to 20x more after thousands were deleted (by this bench's previous rounds,
or by anyone's tests); the runner creates a log per task, the floor none. The cost of
creating a file in the bench's directory is measured at the start and printed; put the
directory elsewhere with ``--tmp``.

    .venv/bin/python bench/pipelines.py [--chain 100] [--count 1000] [--samples 20]
        [--rounds 5] [--cpus 2] [--poll-ms 2] [--database-url URL] [--tmp DIR]
        [--loop auto|asyncio|uvloop] [--profile FILE] [--skip-wes]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from processes import child_env, free_port, running
from strato.auth import Principal, Scope
from strato.context import Context
from strato.db import create_engine
from strato.db.migrate import History, upgrade_history
from strato.pipelines.backends.local import LocalBackend
from strato.pipelines.model.workflow import TaskSpec, Workflow
from strato.pipelines.records import RunState, TaskState
from strato.pipelines.resources import Resources
from strato.pipelines.service import PipelineRuns
from strato.pipelines.store import RunStore
from strato.retry import Backoff
from strato.settings import LogSettings, Settings

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


# submit to running over WES -------------------------------------------------------------

WES = "/ga4gh/wes/v1"
MANIFEST = '__pipeline__:\n  name: bench\n  version: "1.0"\n'
# The task leaves a file when its process runs, and holds a moment so that the run is
# seen RUNNING rather than already COMPLETE.
MAIN = "- name: one\n  cmd: touch started; sleep 0.2\n"
FORM = {
    "workflow_type": "JETSTREAM",
    "workflow_type_version": "1.0",
    "workflow_url": "bench@1.0",
    "workflow_params": json.dumps({"project": "bench"}),
}
RUNNING_OR_PAST = {"RUNNING", "COMPLETE"}
FAILED = {"EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "CANCELING", "PREEMPTED"}

WES_FLOOR_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def run(request):
    async with request.form() as form:
        dict(form)
    return JSONResponse({"run_id": "x"})


async def status(request):
    return JSONResponse({"run_id": "x", "state": "RUNNING"})


app = Starlette(routes=[
    Route("/ga4gh/wes/v1/runs", run, methods=["POST"]),
    Route("/ga4gh/wes/v1/runs/{id}/status", status),
])
"""


@contextlib.contextmanager
def wes_node(tmp: Path, cpus: int) -> Iterator[tuple[str, dict[str, str], Path]]:
    """``strato api`` with the pipeline ``bench@1.0``, a user ``bench`` with a token of
    scope ``run``; yields its URL, the token's header and the runs' project root."""
    root = tmp / "wes"
    (root / "pipelines" / "bench").mkdir(parents=True)
    (root / "pipelines" / "bench" / "pipeline.yaml").write_text(MANIFEST)
    (root / "pipelines" / "bench" / "main.jst").write_text(MAIN)
    data_dir = root / "state"
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    try:
        ctx.migrate()
        ctx.identities.create_user("bench", scopes={Scope.READ, Scope.RUN})
        token = ctx.identities.create_token("bench", {Scope.READ, Scope.RUN}).secret
    finally:
        ctx.close()
    port = free_port()
    argv = [sys.executable, "-m", "strato", "--data-dir", str(data_dir), "api"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env = child_env(
        STRATO_LOG_ACCESS="false",
        STRATO_DATA_DEMO="false",
        STRATO_PIPELINES_SEARCH_PATHS=str(root / "pipelines"),
        STRATO_PIPELINES_PROJECT_ROOT=str(root / "projects"),
        STRATO_PIPELINES_CPUS=str(cpus),
    )
    url = f"http://127.0.0.1:{port}"
    with running(argv, env, root / "strato-api.log", f"{url}/healthz"):
        yield url, {"Authorization": f"Bearer {token}"}, root / "projects"


@contextlib.contextmanager
def wes_floor_server(tmp: Path) -> Iterator[str]:
    """The floor: the same two exchanges answered by a bare Starlette app on uvicorn."""
    root = tmp / "wes-floor"
    root.mkdir()
    (root / "wesfloor.py").write_text(WES_FLOOR_APP)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "wesfloor:app", "--app-dir", str(root)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    url = f"http://127.0.0.1:{port}"
    with running(argv, child_env(), tmp / "wes-floor.log", f"{url}{WES}/runs/x/status"):
        yield url


def post_run(client: httpx.Client) -> str:
    # files= makes httpx send multipart/form-data, as WES asks (an empty text part).
    answer = client.post(f"{WES}/runs", data=FORM, files={"_": (None, b"")})
    if answer.status_code != 200:
        sys.exit(f"WES refused the run: {answer.status_code} {answer.text}")
    run_id: str = answer.json()["run_id"]
    return run_id


def wes_status(client: httpx.Client, run_id: str) -> str:
    state: str = client.get(f"{WES}/runs/{run_id}/status").json()["state"]
    if state in FAILED:
        sys.exit(f"WES run {run_id} {state}")
    return state


def wes_samples(
    url: str, headers: dict[str, str], projects: Path, samples: int, poll: float
) -> tuple[list[float], list[float]]:
    """Per run: ms from the POST to the status RUNNING (or past it), and to its task's
    process started."""
    to_running: list[float] = []
    to_task: list[float] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(samples + 1):  # the first warms the server up: not counted
            start = time.perf_counter()
            run_id = post_run(client)
            while wes_status(client, run_id) not in RUNNING_OR_PAST:
                time.sleep(poll)
            running_at = time.perf_counter()
            started = projects / run_id / "started"
            deadline = time.monotonic() + PATIENCE
            while not started.exists():
                if time.monotonic() > deadline:
                    sys.exit(f"WES run {run_id}: its task never ran")
                time.sleep(0.001)
            task_at = time.perf_counter()
            if i:
                to_running.append((running_at - start) * 1000)
                to_task.append((task_at - start) * 1000)
            while wes_status(client, run_id) != "COMPLETE":  # one run at a time
                time.sleep(0.02)
    return to_running, to_task


def wes_floor_samples(url: str, samples: int) -> list[float]:
    """Per exchange: ms from the POST to the status answered."""
    took: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(samples + 1):
            start = time.perf_counter()
            run_id = post_run(client)
            wes_status(client, run_id)
            if i:
                took.append((time.perf_counter() - start) * 1000)
    return took


def measure_wes(
    tmp: Path, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    with wes_node(tmp, args.cpus) as (url, headers, projects):
        to_running, to_task = wes_samples(url, headers, projects, args.samples, args.poll_ms / 1000)
    with wes_floor_server(tmp) as url:
        floor = wes_floor_samples(url, args.samples)
    return to_running, to_task, floor


# the run -----------------------------------------------------------------------------------


def fresh(path: Path) -> Path:
    """A new directory at ``path``: each round's logs are files created anew (the last
    round's are kept: deleting them would make the next files' creation dearer)."""
    path.mkdir()
    return path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def file_creation_us(directory: Path, count: int = 500) -> float:
    """Microseconds to create (and close) a new file in ``directory``."""
    probe = directory / "probe"
    probe.mkdir()
    start = time.perf_counter()
    for i in range(count):
        os.close(os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    return (time.perf_counter() - start) / count * 1e6


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    print(f"creating a file in {tmp}: {file_creation_us(tmp):.0f} us", flush=True)
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
    rounds = iter(range(args.rounds))
    try:
        await run_once(runs, workflow(20, False))  # warm up: the database, the imports
        measures: dict[str, Callable[[], Awaitable[float]]] = {
            "chain": lambda: run_once(runs, chain),
            "chain floor": lambda: asyncio.to_thread(floor_run, args.chain, 1),
            "independent": lambda: run_once(runs, independent),
            "independent floor": lambda: asyncio.to_thread(floor_run, args.count, args.cpus),
            "independent floor, logs": lambda: asyncio.to_thread(
                floor_run, args.count, args.cpus, fresh(tmp / f"floor-logs-{next(rounds)}")
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
    over_wes = None if args.skip_wes else await asyncio.to_thread(measure_wes, tmp, args)
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
    # Each round's own ratio too: a round's runner and floor ran within seconds of each
    # other, so their spread shows what the machine's swings did to the medians.
    pairs = zip(took["independent"], took["independent floor"], strict=True)
    ratios = sorted(floor / runner for runner, floor in pairs)
    print(
        f"{args.count} independent: runner {rate:,.0f} tasks/s ({med['independent']:.3f} s), "
        f"floor {floor_rate:,.0f} tasks/s ({med['independent floor']:.3f} s); "
        f"runner / floor {rate / floor_rate:.2f}x (goals: >= 200 tasks/s, >= 0.5x); "
        f"the rounds' own {ratios[0]:.2f}-{ratios[-1]:.2f}x"
    )
    logged = args.count / med["independent floor, logs"]
    print(
        f"  the floor with a log file per command: {logged:,.0f} tasks/s; runner / it "
        f"{rate / logged:.2f}x (the runner writes every task's output to its log)"
    )
    running = sorted(to_running)
    print(
        f"submit to running in-process, {args.samples} runs of one task: p50 "
        f"{statistics.median(running):.2f} ms, max {running[-1]:.2f} ms; submit to the run "
        f"ended p50 {statistics.median(to_end):.2f} ms"
    )
    goals = [
        f"added per task {added:.2f} ms (<= 20) {met(added <= 20)}",
        f"{rate:,.0f} tasks/s (>= 200) {met(rate >= 200)}",
        f"{rate / floor_rate:.2f}x the floor (>= 0.5) {met(rate / floor_rate >= 0.5)}",
    ]
    if over_wes is not None:
        wes_running, wes_task, wes_floor = (sorted(x) for x in over_wes)
        p50 = statistics.median(wes_running)
        print(
            f"submit to running over WES, {args.samples} runs of one task, status polled every "
            f"{args.poll_ms:g} ms: RUNNING p50 {p50:.1f} ms, max {wes_running[-1]:.1f} ms; "
            f"its task's process started p50 {statistics.median(wes_task):.1f} ms, max "
            f"{wes_task[-1]:.1f} ms (goal <= 1,000); the floor (the same POST and status GET "
            f"to a bare Starlette app) p50 {statistics.median(wes_floor):.1f} ms, max "
            f"{wes_floor[-1]:.1f} ms"
        )
        worst = max(wes_running[-1], wes_task[-1])
        goals.append(
            f"submit to running over WES max {worst:.0f} ms (<= 1,000) {met(worst <= 1000)}"
        )
    print("goals (issue 15): " + "; ".join(goals))


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", type=int, default=100, help="sequential tasks in one run")
    parser.add_argument("--count", type=int, default=1000, help="independent tasks in one run")
    parser.add_argument("--samples", type=int, default=20, help="submit-to-running samples")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of runs and floors")
    parser.add_argument(
        "--cpus", type=int, default=os.cpu_count() or 1, help="CPUs the runner hands out"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=2.0, help="pause between a WES client's status polls"
    )
    parser.add_argument("--database-url", default=None, help="a fresh SQLite if none")
    parser.add_argument("--tmp", default=None, help="where the bench's files go (default: TMPDIR)")
    parser.add_argument("--skip-wes", action="store_true", help="no submit to running over WES")
    parser.add_argument("--profile", default=None, help="cProfile the runner's runs into FILE")
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="the runner's event loop; auto: uvloop when installed, as strato api's uvicorn",
    )
    args = parser.parse_args()
    print(f"load average at start: {load()}", flush=True)
    loop_factory = event_loop(args.loop)
    with (
        tempfile.TemporaryDirectory(dir=args.tmp) as tmp,
        asyncio.Runner(loop_factory=loop_factory) as runner,
    ):
        print(f"event loop: {type(runner.get_loop()).__module__}", flush=True)
        runner.run(bench(args, Path(tmp)))


def event_loop(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop the runner is driven on: the server's (uvicorn picks uvloop when it is
    installed, and strato installs it with uvicorn[standard]) unless asked otherwise."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            sys.exit("--loop uvloop: uvloop is not installed")
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    main()
