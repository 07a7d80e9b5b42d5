"""OGC API - Processes over HTTP: strato against pygeoapi, against the floor of HTTP on
this machine, and against strato's own engine.

Each server runs as a user runs it, in a process of its own on loopback, and is driven the
same way by one asyncio client, aiohttp and httpx in turn (``--clients``; httpx costs
about three times aiohttp's CPU per request, which on two cores shared with the server
shows in every figure, so both are printed):

- **executions**: ``--count`` asynchronous executions of ``hello-world`` (default 1,000),
  ``--concurrency`` at a time (default 16): ``POST /processes/hello-world/execution`` with
  ``Prefer: respond-async`` (201 and a ``Location``), then ``GET`` that job with
  ``Prefer: wait=30`` until it is ``successful`` (a server honouring the RFC 7240 wait
  answers when the job ends; one that does not answers at once, and the client polls
  every ``--poll-ms``, default 1), then ``GET`` its results; executions/s from the first
  POST to the last result.
- **one at a time**: ``--samples`` executions (default 200), the milliseconds from the
  POST to holding the results; p50.

The servers:

1. **strato**: ``strato api`` on a fresh data directory (SQLite, local executor with its
   default workers), a user with a token of scope ``process``; ``--setting`` (repeatable)
   serves it with a setting changed. Then the same with
   ``processes.fast_job_requests=false`` (first client only; ``--skip-plain`` leaves it
   out): what the fast path for job requests is worth.
2. **the floor**: a bare Starlette app on the same uvicorn answering the same three
   requests with constant JSON (no routing table, no authentication, no job): what the
   client and HTTP alone cost.
3. **pygeoapi** (the peer): its ``HelloWorld`` processor, executed asynchronously by its
   default manager (TinyDB), served by uvicorn from its Starlette app, with a minimal
   configuration and the OpenAPI document ``pygeoapi openapi generate`` writes (first
   client only).

And in the same run, strato's job engine itself (in this process, a fresh SQLite, the same
executor and task): ``--count`` jobs ``--concurrency`` at a time, and ``--samples`` round
trips one at a time (submit, then ``JobEngine.wait``). Issue 14's goal: the overhead HTTP
adds per execution, 16 at a time (wall time per execution over HTTP minus the engine's),
at most 2x the engine's round trip p50; the same one at a time (p50 over HTTP minus the
engine's) is printed beside it. Then strato / pygeoapi in executions/s (goal: >= 5x).

    .venv/bin/python bench/processes.py [--count 1000] [--concurrency 16] [--samples 200]
        [--poll-ms 1] [--clients aiohttp,httpx] [--setting KEY=VALUE] [--skip-plain]
        [--skip-pygeoapi]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from _serving import add_setting_option, setting_env
from strato.auth import Scope
from strato.context import Context
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.jobs.service import open_jobs
from strato.settings import LogSettings, Settings

HELLO = "strato.processes.hello_world:run"
INPUTS = {"name": "bench", "message": "hi"}
WARMUP = 20
FAST_OFF = "processes.fast_job_requests=false"
# Status requests ask to be held until the job ends (RFC 7240): strato honours it.
WAIT = {"Prefer": "wait=30"}
PATIENCE = 120.0  # seconds any one execution may take: a bound against hanging


@dataclass
class Figures:
    name: str
    rate: float  # executions/s at the concurrency
    took: list[float]  # one at a time, ms, sorted

    @property
    def p50(self) -> float:
        return statistics.median(self.took)

    @property
    def per_execution(self) -> float:
        """Wall milliseconds per execution at the concurrency."""
        return 1000 / self.rate

    def line(self, count: int, concurrency: int, samples: int) -> str:
        return (
            f"{self.name}:\n"
            f"  {count} executions, {concurrency} at a time: {self.rate:,.0f}/s "
            f"({self.per_execution:.2f} ms each)\n"
            f"  {samples} one at a time: p50 {self.p50:.2f} ms, "
            f"p95 {self.took[int(len(self.took) * 0.95)]:.2f} ms"
        )


# One OGC API - Processes client for every server, over either HTTP client ----------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


class Transport:
    """The two calls the client makes, over httpx or aiohttp (each a client a Python user
    would pick; aiohttp costs a third of httpx's CPU per request, which on two cores shared
    with the server shows in every figure)."""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> Answer:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class HttpxTransport(Transport):
    def __init__(self, headers: dict[str, str], concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(headers=headers, timeout=PATIENCE, limits=limits)

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> Answer:
        got = await self.http.request(method, url, headers=headers, json=body)
        return Answer(got.status_code, {k.lower(): v for k, v in got.headers.items()}, got.text)

    async def close(self) -> None:
        await self.http.aclose()


class AiohttpTransport(Transport):
    def __init__(self, headers: dict[str, str], concurrency: int) -> None:
        import aiohttp

        self.http = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=PATIENCE),
            connector=aiohttp.TCPConnector(limit=concurrency),
        )

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> Answer:
        async with self.http.request(method, url, headers=headers, json=body) as got:
            return Answer(
                got.status, {k.lower(): v for k, v in got.headers.items()}, await got.text()
            )

    async def close(self) -> None:
        await self.http.close()


TRANSPORTS: dict[str, type[Transport]] = {"aiohttp": AiohttpTransport, "httpx": HttpxTransport}


class Client:
    def __init__(self, http: Transport, api: str, poll: float) -> None:
        self.http = http
        self.api = api
        self.poll = poll

    async def execute(self) -> None:
        answer = await self.http.request(
            "POST",
            f"{self.api}/processes/hello-world/execution",
            {"Prefer": "respond-async"},
            {"inputs": INPUTS},
        )
        if answer.status != 201:
            sys.exit(f"{self.api}: execution answered {answer.status}: {answer.text}")
        job = answer.headers["location"]
        deadline = time.monotonic() + PATIENCE
        while True:
            # A server that honours the wait preference answers when the job ends; one
            # that does not answers at once, and the client polls.
            status = json.loads((await self.http.request("GET", job, WAIT)).text)
            if status["status"] == "successful":
                break
            if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
                sys.exit(f"{job}: {status}")
            await asyncio.sleep(self.poll)
        results = await self.http.request("GET", f"{job}/results?f=json", {})
        if results.status != 200 or "Hello bench!" not in results.text:
            sys.exit(f"{job}/results answered {results.status}: {results.text}")


async def measure_http(
    name: str, api: str, headers: dict[str, str], args: Any, transport: str
) -> Figures:
    async with TRANSPORTS[transport](headers, args.concurrency) as http:
        client = Client(http, api, args.poll_ms / 1000)
        for _ in range(WARMUP):
            await client.execute()
        rate = await concurrently(client.execute, args.count, args.concurrency)
        took = []
        for _ in range(args.samples):
            start = time.perf_counter()
            await client.execute()
            took.append((time.perf_counter() - start) * 1000)
    return Figures(f"{name} ({transport} client)", rate, sorted(took))


async def concurrently(one: Any, count: int, concurrency: int) -> float:
    """``count`` calls of ``one``, ``concurrency`` running at any time: calls per second."""
    left = iter(range(count))

    async def lane() -> None:
        for _ in left:
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


# strato's engine, in this process ------------------------------------------------------


async def measure_engine(args: Any, tmp: Path) -> Figures:
    settings = Settings(data_dir=tmp, log=LogSettings(access=False))
    ctx = Context.open(settings)
    ctx.migrate()
    engine = open_jobs(ctx.sessions, settings)
    engine.start()
    try:

        async def one() -> None:
            await run_job(engine)

        for _ in range(WARMUP):
            await one()
        rate = await concurrently(one, args.count, args.concurrency)
        took = []
        for _ in range(args.samples):
            start = time.perf_counter()
            await one()
            took.append((time.perf_counter() - start) * 1000)
    finally:
        engine.close()
        ctx.close()
    return Figures("strato's job engine, in-process", rate, sorted(took))


async def run_job(engine: JobService) -> None:
    job = engine.submit(task=HELLO, inputs=INPUTS, owner="bench", process_id="hello-world")
    done = await engine.wait(job.id, PATIENCE)
    if done.status != JobStatus.successful:
        sys.exit(f"a job did not succeed: {done}")


# The servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATO_", "PYGEOAPI_"))}
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log: Path, health: str) -> Iterator[None]:
    """``argv`` in a process of its own until the block ends, once ``health`` answers."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{argv[:4]} did not start: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(health, timeout=5).status_code == 200:
                    break
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def strato_server(tmp: Path, settings: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp / ("strato-" + "-".join(sorted(settings)) if settings else "strato")
    ctx = Context.open(Settings(data_dir=data_dir, log=LogSettings(access=False)))
    try:
        ctx.migrate()
        ctx.identities.create_user("bench", scopes={Scope.READ, Scope.PROCESS})
        token = ctx.identities.create_token("bench", {Scope.READ, Scope.PROCESS}).secret
    finally:
        ctx.close()
    port = free_port()
    argv = [sys.executable, "-m", "strato", "--data-dir", str(data_dir), "api"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env = child_env(STRATO_LOG_ACCESS="false", STRATO_DATA_DEMO="false", **settings)
    url = f"http://127.0.0.1:{port}"
    with running(argv, env, data_dir.with_suffix(".log"), f"{url}/healthz"):
        yield f"{url}/processes-api", {"Authorization": f"Bearer {token}"}


PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  pretty_print: false
  limits: {{default_items: 10, max_items: 50}}
  map: {{url: "http://127.0.0.1/{{z}}/{{x}}/{{y}}.png", attribution: none}}
  manager:
    name: TinyDB
    connection: {jobs}
    output_dir: {outputs}
logging:
  level: ERROR
metadata:
  identification:
    title: bench
    description: the peer of strato's processes benchmark
    keywords: [bench]
    keywords_type: theme
    terms_of_service: none
    url: http://127.0.0.1/
  license: {{name: none, url: "http://127.0.0.1/"}}
  provider: {{name: bench, url: "http://127.0.0.1/"}}
  contact:
    name: bench
    position: none
    address: none
    city: none
    stateorprovince: none
    postalcode: none
    country: none
    phone: none
    fax: none
    email: none@127.0.0.1
    url: "http://127.0.0.1/"
    hours: none
    instructions: none
    role: pointOfContact
resources:
  hello-world:
    type: process
    processor:
      name: HelloWorld
"""


@contextlib.contextmanager
def pygeoapi_server(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp / "pygeoapi"
    (root / "outputs").mkdir(parents=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        PYGEOAPI_CONFIG.format(port=port, jobs=root / "jobs.db", outputs=root / "outputs")
    )
    openapi = root / "openapi.yml"
    env = child_env(PYGEOAPI_CONFIG=str(config), PYGEOAPI_OPENAPI=str(openapi))
    exe = Path(sys.executable).with_name("pygeoapi")
    generate = [str(exe), "openapi", "generate", str(config), "--output-file", str(openapi)]
    done = subprocess.run(generate, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"pygeoapi openapi generate failed: {done.stderr[-2000:]}")
    argv = [sys.executable, "-m", "uvicorn", "pygeoapi.starlette_app:APP"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level"]
    argv += ["warning"]
    url = f"http://127.0.0.1:{port}"
    with running(argv, env, tmp / "pygeoapi.log", f"{url}/processes?f=json"):
        yield url, {"Accept": "application/json"}


def version_of(module: str) -> str:
    found = re.search(r"[\d.]+", __import__(module).__version__)
    return found.group(0) if found else "?"


FLOOR_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def execute(request):
    await request.body()
    location = str(request.base_url) + "jobs/x"
    return JSONResponse({"jobID": "x", "status": "accepted"}, 201, {"Location": location})


async def status(request):
    return JSONResponse({"jobID": "x", "status": "successful"})


async def results(request):
    return JSONResponse({"echo": "Hello bench! hi"})


app = Starlette(routes=[
    Route("/processes/hello-world/execution", execute, methods=["POST"]),
    Route("/jobs/{id}", status),
    Route("/jobs/{id}/results", results),
])
"""


@contextlib.contextmanager
def floor_server(tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The physical limit: the same three exchanges answered with constant JSON by a bare
    Starlette app on the same uvicorn (no routing table, no authentication, no job)."""
    root = tmp / "floor"
    root.mkdir()
    (root / "floorapp.py").write_text(FLOOR_APP)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "floorapp:app", "--app-dir", str(root)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    url = f"http://127.0.0.1:{port}"
    with running(argv, child_env(), tmp / "floor.log", f"{url}/jobs/x"):
        yield url, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--poll-ms", type=float, default=1.0, help="pause between a client's status polls"
    )
    parser.add_argument(
        "--clients",
        default="aiohttp,httpx",
        help="HTTP clients to drive the servers with (the first also drives pygeoapi)",
    )
    parser.add_argument("--skip-pygeoapi", action="store_true")
    parser.add_argument(
        "--skip-plain", action="store_true", help=f"do not measure strato with {FAST_OFF}"
    )
    add_setting_option(parser)
    args = parser.parse_args()
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not clients or set(clients) - set(TRANSPORTS):
        parser.error(f"--clients: choose among {', '.join(TRANSPORTS)}")
    with tempfile.TemporaryDirectory(prefix="strato-bench-processes-") as name:
        tmp = Path(name)
        engine = asyncio.run(measure_engine(args, tmp / "engine"))
        strato, floor = {}, {}
        with strato_server(tmp, setting_env(args.setting)) as (api, headers):
            for client in clients:
                strato[client] = asyncio.run(
                    measure_http("strato api, over HTTP", api, headers, args, client)
                )
        plain = None
        if not args.skip_plain:
            # The same server with the job requests' fast path off: what it is worth.
            off = {**setting_env(args.setting), **setting_env([FAST_OFF])}
            with strato_server(tmp, off) as (api, headers):
                plain = asyncio.run(
                    measure_http(f"strato api, {FAST_OFF}", api, headers, args, clients[0])
                )
        with floor_server(tmp) as (api, headers):
            for client in clients:
                floor[client] = asyncio.run(
                    measure_http("floor: bare Starlette, constant JSON", api, headers, args, client)
                )
        peer = None
        if not args.skip_pygeoapi:
            with pygeoapi_server(tmp) as (api, headers):
                name = f"pygeoapi {version_of('pygeoapi')} (TinyDB manager), over HTTP"
                peer = asyncio.run(measure_http(name, api, headers, args, clients[0]))
    for figures in (engine, *strato.values(), plain, *floor.values(), peer):
        if figures is not None:
            print(figures.line(args.count, args.concurrency, args.samples))
    for client in clients:
        report(client, engine, strato[client], floor[client], args.concurrency)
    if plain is not None:
        on = strato[clients[0]]
        print(
            f"[{clients[0]}] fast path for job requests: executions/s on / off "
            f"{on.rate / plain.rate:.2f}x; one at a time p50 off / on {plain.p50 / on.p50:.2f}x"
        )
    if peer is not None:
        ours = strato[clients[0]]
        print(
            f"strato / pygeoapi executions/s ({clients[0]} client): "
            f"{ours.rate / peer.rate:.1f}x (goal >= 5x); one at a time p50: "
            f"pygeoapi / strato {peer.p50 / ours.p50:.1f}x"
        )


def report(client: str, engine: Figures, strato: Figures, floor: Figures, concurrency: int) -> None:
    overhead = strato.p50 - engine.p50
    print(
        f"[{client}] overhead of HTTP per execution, one at a time: {overhead:.2f} ms = "
        f"{overhead / engine.p50:.2f}x the engine's round trip p50 ({engine.p50:.2f} ms; "
        f"goal <= 2x); the floor's three exchanges alone: {floor.p50:.2f} ms "
        f"(strato / floor {strato.p50 / floor.p50:.2f}x)"
    )
    loaded = strato.per_execution - engine.per_execution
    print(
        f"[{client}] overhead of HTTP per execution, {concurrency} at a time: {loaded:.2f} ms = "
        f"{loaded / engine.p50:.2f}x the engine's round trip p50 (goal <= 2x); the floor: "
        f"{floor.per_execution:.2f} ms per execution (strato / floor executions/s "
        f"{strato.rate / floor.rate:.2f}x)"
    )


if __name__ == "__main__":
    main()
