"""Many sessions on one gateway (issue 16's "100 concurrent sessions on one gateway; 1,000
request/release cycles leave no port, process or file descriptor behind"), on loopback.

Two control servers as their own processes (``strato stream serve``, TLS control channels,
builtin data servers, TLS gateway-to-gateway legs unless ``--plain-legs``), as in
``bench/stream_connect.py``; one echo server in a process of its own (``bench/stream_echo.py``:
``splice``, so it costs next to no CPU) is every session's target.

1. N sessions set up at once: ``client.connect`` N times concurrently; the wall time for
   all, each connect's own time, and the forwarder processes' memory (RSS summed, and USS:
   what each holds alone, shared pages not counted).
2. Data through all N at once: each connection sends ``--size`` bytes to the echo server
   and reads them back, checked byte for byte; the aggregate rate counts both directions,
   and so does the forwarders' CPU per GB.
   The limit, in the same run: the same N connections straight to the echo server, no
   gateway. Rounds alternate gateway and direct.
3. All released at once, then what is left: the data ports listening or connected, the
   forwarder processes, the control servers' descriptors and sessions, against before.
4. Cycles one after another, each counted the same way: ``--cycles`` requests and releases
   (``req`` with its ``hello``, then ``release``, on both gateways at once, each over a new
   channel: ports reserved and freed, no forwarder), then ``--connect-cycles`` of
   ``connect`` and ``release`` (a forwarder handed its session and stopped on each gateway
   per cycle: about 60-80 ms each here, Python starting the replacement spares).

    .venv/bin/python bench/stream.py --sessions 100   # [--cycles 1000] [--connect-cycles 100]
        # [--size 8] [--rounds 3] [--plain-legs]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from bench.stream_connect import Served, environment, serve

from strato.stream import client
from strato.stream.proto import sessions_pb2 as spb

MB = 1_000_000
TCP_STATES = {"0A": "listen", "06": "time_wait"}


# -- the echo target -------------------------------------------------------------------------


@contextlib.contextmanager
def echo_process() -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("stream_echo.py"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield ("127.0.0.1", int(proc.stdout.readline()))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.kill()
        proc.wait()


# -- moving data through N connections at once -----------------------------------------------


def transfer(addresses: list[tuple[str, int]], data: bytes) -> tuple[float, int]:
    """Each address gets a connection; once all are open and have echoed a first byte (a
    TLS leg's handshake done), all send ``data`` at once and read it back. Seconds from
    the start to the last byte back, and how many came back intact."""
    conns = []
    for address in addresses:
        c = socket.create_connection(address, timeout=60)
        c.sendall(b"p")
        if c.recv(1) != b"p":
            raise RuntimeError(f"{address}: the first byte did not come back")
        conns.append(c)
    start = threading.Barrier(len(conns) + 1)
    intact = [False] * len(conns)

    def send(c: socket.socket) -> None:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)

    def run(k: int, c: socket.socket) -> None:
        start.wait()
        sender = threading.Thread(target=send, args=(c,))
        sender.start()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        got, same = 0, True
        while n := c.recv_into(buf):
            same = same and data.startswith(view[:n], got)  # memcmp, no copy
            got += n
        sender.join()
        intact[k] = same and got == len(data)

    threads = [threading.Thread(target=run, args=(k, c)) for k, c in enumerate(conns)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    for c in conns:
        c.close()
    return took, sum(intact)


# -- what the gateways hold ------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the two gateways hold at one moment."""

    listening: int  # data ports of both pools something listens on
    connected: int  # sockets on those ports in another state than TIME_WAIT or LISTEN
    forwarders: int  # the control servers' child processes (spares included)
    fds: tuple[int, int]  # each control server's descriptors, but its database's
    db_fds: tuple[int, int] = field(compare=False)  # its database pool's files: bounded
    sessions: tuple[int, int]  # each control server's live sessions
    ports_free: tuple[int, int]
    own_fds: int  # this process's descriptors

    def row(self) -> str:
        return (
            f"listening {self.listening:4}  connected {self.connected:4}  forwarders "
            f"{self.forwarders:4}  fds {self.fds[0]:4} {self.fds[1]:4} (+db {self.db_fds[0]} "
            f"{self.db_fds[1]})  sessions "
            f"{self.sessions[0]:4} {self.sessions[1]:4}  ports free {self.ports_free[0]:4} "
            f"{self.ports_free[1]:4}  bench fds {self.own_fds}"
        )


def _sockets(ranges: list[tuple[int, int]]) -> tuple[int, int]:
    listening = connected = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                port, state = int(fields[1].rsplit(":", 1)[1], 16), fields[3]
                if any(a <= port <= b for a, b in ranges):
                    kind = TCP_STATES.get(state)
                    listening += kind == "listen"
                    connected += kind is None
    return listening, connected


def _fds(pid: int) -> tuple[int, int]:
    """A process's descriptors: those not of its SQLite database, and those. The
    database's connections are a pool that grows with the calls checked at once (token
    checks on worker threads) up to its size: not something a session leaves."""
    other = db = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith((".db", ".db-wal", ".db-shm", ".db-journal")):
            db += 1
        else:
            other += 1
    return other, db


def forwarder_procs(servers: list[Served]) -> list[psutil.Process]:
    return [c for s in servers for c in psutil.Process(s.proc.pid).children(recursive=True)]


async def held(servers: list[Served], token: str) -> Held:
    statuses = []
    for s in servers:
        async with client.Control(s.gateway, token) as c:
            statuses.append(
                await c.sessions_stub.Status(spb.StatusRequest(), metadata=c._md, timeout=10)
            )
    listening, connected = _sockets([(s.first, s.last) for s in servers])
    (fds0, db0), (fds1, db1) = _fds(servers[0].proc.pid), _fds(servers[1].proc.pid)
    return Held(
        listening,
        connected,
        len(forwarder_procs(servers)),
        (fds0, fds1),
        (db0, db1),
        (statuses[0].sessions, statuses[1].sessions),
        (statuses[0].ports_free, statuses[1].ports_free),
        len(os.listdir("/proc/self/fd")),
    )


async def settled(servers: list[Served], token: str, like: Held, wait: float = 10.0) -> Held:
    """What is held once it equals ``like`` (a released forwarder's replacement spare
    starts in the background), or after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        now = await held(servers, token)
        if now == like or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.2)


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def memory(procs: list[psutil.Process]) -> tuple[float, float]:
    """RSS and USS of the processes summed, in MB."""
    rss = uss = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            full = p.memory_full_info()
            rss += full.rss
            uss += full.uss
    return rss / MB, uss / MB


# -- the run ---------------------------------------------------------------------------------


async def _timed_connect(
    p: client.Gateway, c: client.Gateway, target: str, token: str
) -> tuple[client.Connection, float]:
    began = time.perf_counter()
    conn = await client.connect(p, c, [target], token)
    return conn, (time.perf_counter() - began) * 1000


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.1f} ms  min {min(values):7.1f}  "
        f"max {max(values):7.1f}"
    )


async def _run(servers: list[Served], target: tuple[str, int], token: str, args: Options) -> None:
    p, c = servers[0].gateway, servers[1].gateway
    target_s = f"{target[0]}:{target[1]}"
    before = await held(servers, token)
    print(f"before      {before.row()}  (load {_load()})")

    began = time.perf_counter()
    tried = await asyncio.gather(
        *(_timed_connect(p, c, target_s, token) for _ in range(args.n)), return_exceptions=True
    )
    wall = (time.perf_counter() - began) * 1000
    made = [m for m in tried if not isinstance(m, BaseException)]
    if len(made) < args.n:  # what was set up is released before saying what went wrong
        await asyncio.gather(*(client.release(m[0].uid, [p, c], token) for m in made))
        raise next(m for m in tried if isinstance(m, BaseException))
    conns = [m[0] for m in made]
    each = _ms([m[1] for m in made])
    print(f"\n{args.n} connects at once: all set up in {wall:.0f} ms; each {each}")
    procs = forwarder_procs(servers)
    rss, uss = memory(procs)
    print(
        f"forwarders: {len(procs)} processes (spares included), RSS {rss:.0f} MB summed "
        f"({rss / len(procs):.1f} each), USS {uss:.0f} MB ({uss / len(procs):.1f} each)"
    )
    during = await held(servers, token)
    print(f"with {args.n:<5}  {during.row()}  (load {_load()})")

    data = os.urandom(args.size)
    paths = {
        "gateway": [tuple_of(conn.listeners[0]) for conn in conns],
        "direct": [target] * args.n,
    }
    rates: dict[str, list[float]] = {"gateway": [], "direct": []}
    moved = 2 * args.n * args.size * 8 / 1e9  # Gbit, both directions
    print(
        f"\n{args.n} connections at once, each {args.size / MB:g} MB echoed and checked "
        f"(Gbit/s counts both directions):"
    )
    cpu_per_gb: list[float] = []
    for r in range(args.rounds):
        order = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
        for name in order:
            before_cpu = _cpu(procs)
            took, intact = await asyncio.to_thread(transfer, paths[name], data)
            used = (_cpu(procs) - before_cpu) / (moved / 8)  # CPU s per GB moved
            if intact != args.n:
                raise RuntimeError(f"{name}: {args.n - intact} connections lost bytes")
            rates[name].append(moved / took)
            if name == "gateway":
                cpu_per_gb.append(used)
            print(
                f"  round {r + 1} {name:8} {moved / took:6.2f} Gbit/s  {took:5.2f} s  "
                f"{intact}/{args.n} intact  forwarders {used:.2f} CPU s/GB  (load {_load()})"
            )
    g, d = statistics.median(rates["gateway"]), statistics.median(rates["direct"])
    print(
        f"gateway {g:.2f} Gbit/s ({min(rates['gateway']):.2f}-{max(rates['gateway']):.2f}), "
        f"direct {d:.2f} ({min(rates['direct']):.2f}-{max(rates['direct']):.2f}): "
        f"{g / d:.2f}x the limit; forwarders {statistics.median(cpu_per_gb):.2f} CPU s/GB"
    )

    began = time.perf_counter()
    await asyncio.gather(*(client.release(conn.uid, [p, c], token) for conn in conns))
    print(f"\n{args.n} released at once in {(time.perf_counter() - began) * 1000:.0f} ms")
    _left(before, await settled(servers, token, before))

    if args.cycles:
        took = await _cycles(servers, target_s, token, args.cycles, _request_release)
        _report(f"{args.cycles} req + hello + release cycles on both gateways", took)
        _left(before, await settled(servers, token, before))
    if args.connect_cycles:
        took = await _cycles(servers, target_s, token, args.connect_cycles, _connect_release)
        _report(f"{args.connect_cycles} connect + release cycles", took)
        _left(before, await settled(servers, token, before))


Cycle = Callable[[list[Served], str, str], Awaitable[None]]


async def _request_release(servers: list[Served], target: str, token: str) -> None:
    """A session requested and released on each gateway at once, over a new channel as
    a user's command makes: ports reserved and freed, no forwarder (no update)."""

    async def one(gateway: client.Gateway, role: str) -> None:
        uid = client.new_uid()
        async with client.Control(gateway, token) as control:
            await asyncio.gather(
                control.req(uid, role, 1, 10000),
                control.hello(uid, "PROD", [target] if role == "PROD" else []),
            )
            await control.release(uid)

    await asyncio.gather(one(servers[0].gateway, "PROD"), one(servers[1].gateway, "CONS"))


async def _connect_release(servers: list[Served], target: str, token: str) -> None:
    """``connect`` and ``release``: a forwarder per gateway handed its session, then
    stopped."""
    p, c = servers[0].gateway, servers[1].gateway
    conn = await client.connect(p, c, [target], token)
    await client.release(conn.uid, [p, c], token)


async def _cycles(
    servers: list[Served], target: str, token: str, count: int, cycle: Cycle
) -> list[float]:
    took = []
    for _ in range(count):
        began = time.perf_counter()
        await cycle(servers, target, token)
        took.append((time.perf_counter() - began) * 1000)
    return took


def _report(what: str, took: list[float]) -> None:
    print(f"\n{what}, one after another, in {sum(took) / 1000:.1f} s; each {_ms(took)}")


def _left(before: Held, after: Held) -> None:
    print(f"before      {before.row()}")
    print(f"after       {after.row()}  (load {_load()})")
    print(f"left behind: {'nothing' if after == before else 'SOMETHING (see the rows)'}")


def tuple_of(listener: str) -> tuple[str, int]:
    host, port = listener.rsplit(":", 1)
    return host, int(port)


@dataclass(frozen=True)
class Options:
    n: int
    cycles: int = 1000
    connect_cycles: int = 100
    size: int = 8 * MB
    rounds: int = 3
    plain_legs: bool = False


def main(options: Options) -> None:
    legs = "plaintext" if options.plain_legs else "TLS"
    settings = {"STRATO_STREAM_LEG_TLS": "false"} if options.plain_legs else {}
    with tempfile.TemporaryDirectory(prefix="strato-bench-sessions-") as tmp_name:
        tmp = Path(tmp_name)
        env, token = environment(tmp)
        ports = options.n + 10
        with (
            # Above the kernel's ephemeral ports (32768-60999 by default): the thousands of
            # connections the run makes never take a port of the pools.
            serve(tmp, "producer", env, 61000, ports, settings) as p,
            serve(tmp, "consumer", env, p.last + 1, ports, settings) as c,
            echo_process() as target,
        ):
            print(
                f"two control servers (TLS control, builtin, {legs} legs) on loopback, "
                f"{ports} data ports each; {os.cpu_count()} CPUs"
            )
            asyncio.run(_run([p, c], target, token, options))
