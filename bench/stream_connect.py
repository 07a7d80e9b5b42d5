"""Setup time of a stream on loopback: two gateways' control servers as their own
processes (`strato stream serve`, TLS with certificates from `strato stream cert`, builtin
data servers, TLS legs), and `strato stream connect` setting up both sides, measured two
ways: the Python API's ``client.connect`` (the command's own work, as it prints "set up
in"), and the command as a user runs it (its wall time includes starting Python and
strato's command line). Each connection is checked to carry bytes, then released.

    .venv/bin/python bench/stream.py --connect 20
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from tests.stream.support import roundtrip, server

from strato.stream import client
from strato.stream.dataserver.base import Address

GOAL_MS = 100.0


def _strato(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "strato", *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"strato {' '.join(args)}: {done.stderr.strip()}")
    return done


def _free_block(n: int, start: int) -> int:
    """The first port of ``n`` free consecutive loopback ports from ``start`` on."""
    for first in range(start, 65536 - n, n):
        socks = []
        try:
            for port in range(first, first + n):
                s = socket.socket()
                # As the control server binds: a port with connections in TIME_WAIT is free.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


@dataclass(frozen=True)
class Served:
    """A control server run as ``strato stream serve``: how to reach it, its process, and
    its pool of data ports (``first``-``last``)."""

    gateway: client.Gateway
    proc: subprocess.Popen[str]
    first: int
    last: int


@contextlib.contextmanager
def serve(
    tmp: Path,
    name: str,
    env: dict[str, str],
    start: int,
    ports: int = 20,
    settings: dict[str, str] | None = None,
) -> Iterator[Served]:
    """``strato stream serve`` on loopback with its own certificate and ``ports`` data
    ports; ``settings`` are more ``STRATO_STREAM_*`` variables."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    _strato("stream", "cert", "127.0.0.1", "--cert", str(cert), "--key", str(key), env=env)
    listen = _free_block(1, start)
    first = _free_block(ports, listen + 1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strato",
            "stream",
            "serve",
            "--listen",
            f"127.0.0.1:{listen}",
            "--port-range",
            f"{first}-{first + ports - 1}",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "STRATO_STREAM_STATE_DIR": str(tmp / f"state-{name}"), **(settings or {})},
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if "control server on" not in line:
            raise RuntimeError(f"the {name} control server did not start: {line.strip()}")
        # Whatever it says later is read, so that a full pipe never stops it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        time.sleep(0.5)  # its warm-up (a spare forwarder, where there is one) done
        yield Served(client.Gateway(f"127.0.0.1:{listen}", cert), proc, first, first + ports - 1)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop a control server and make sure its forwarders are gone: it releases every
    session when told to stop (which takes a while with many), and a forwarder whose
    control server dies keeps forwarding until the next one reaps it, which here, with a
    temporary state directory, would never come."""
    forwarders: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        forwarders = psutil.Process(proc.pid).children(recursive=True)
    proc.terminate()
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in forwarders:
        with contextlib.suppress(psutil.Error):
            child.kill()  # psutil checks it is still the same process


@contextlib.contextmanager
def _gateway(tmp: Path, name: str, env: dict[str, str], start: int) -> Iterator[client.Gateway]:
    with serve(tmp, name, env, start) as served:
        yield served.gateway


def environment(tmp: Path) -> tuple[dict[str, str], str]:
    """strato's environment with its data in ``tmp``, and a token of a user with scope
    ``stream`` there."""
    env = {**os.environ, "STRATO_DATA_DIR": str(tmp / "data")}
    env.pop("STRATO_TOKEN", None)
    _strato("user", "create", "bench", "--scope", "stream", env=env)
    token = _strato("token", "create", "--user", "bench", "--scope", "stream", env=env)
    return env, token.stdout.strip()


def _summary(label: str, values: list[float]) -> str:
    return (
        f"{label:34} median {statistics.median(values):6.1f} ms  "
        f"min {min(values):6.1f}  max {max(values):6.1f}  (n={len(values)})"
    )


async def _api_rounds(
    p: client.Gateway, c: client.Gateway, target: Address, token: str, rounds: int
) -> list[float]:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        conn = await client.connect(p, c, [str(target)], token)
        took.append((time.perf_counter() - started) * 1000)
        host, port = conn.listeners[0].rsplit(":", 1)
        if not await asyncio.to_thread(roundtrip, Address(host, int(port)), 10_000):
            raise RuntimeError("a connection did not carry its bytes")
        await client.release(conn.uid, [p, c], token)
        await asyncio.sleep(0.3)  # the gateways' replacement spares, as between users
    return took


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="strato-bench-connect-") as tmp_name:
        tmp = Path(tmp_name)
        env, token = environment(tmp)
        with (
            _gateway(tmp, "producer", env, 46000) as p,
            _gateway(tmp, "consumer", env, 47000) as c,
            server("echo") as target,
        ):
            print("two control servers (TLS, builtin, TLS legs) on loopback, one connection")
            print(f"load (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            api = asyncio.run(_api_rounds(p, c, target, token, rounds))
            printed, wall = [], []
            for _ in range(max(3, rounds // 4)):
                started = time.perf_counter()
                done = _strato(
                    "stream",
                    "connect",
                    "--producer-gateway",
                    p.address,
                    "--consumer-gateway",
                    c.address,
                    "--producer-targets",
                    str(target),
                    "--producer-cert",
                    str(p.server_cert),
                    "--consumer-cert",
                    str(c.server_cert),
                    env={**env, "STRATO_TOKEN": token},
                )
                wall.append((time.perf_counter() - started) * 1000)
                said = re.search(r"set up in (\d+) ms", done.stderr)
                printed.append(float(said.group(1)) if said else float("nan"))
                uid = done.stdout.splitlines()[0].removeprefix("uid: ")
                asyncio.run(client.release(uid, [p, c], token))
                time.sleep(0.3)
            print(f"load (1 min) {os.getloadavg()[0]:.1f}")
    print(_summary("client.connect (API)", api))
    print(_summary("strato stream connect: set up in", printed))
    print(_summary("strato stream connect: wall", wall))
    med = statistics.median(api)
    said = "met" if med <= GOAL_MS else "NOT met"
    print(f"setup {med:.1f} ms (goal <= {GOAL_MS:g} ms on loopback: {said})")
