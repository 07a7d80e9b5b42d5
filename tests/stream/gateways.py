"""A session across the two gateways of :mod:`tests.stream.netns`, made with the data server
classes directly (the control server's part, done by hand): the producer gateway listens on
its WAN address and forwards to the producer host's application; the consumer gateway
listens on its LAN address and forwards over the WAN to the producer gateway's listener.
With ``tls``, that WAN leg is TLS 1.3 with per-session certificates (made here with
``cryptography``, as the control server makes them), the consumer gateway dialing.

Shared by the facility tests and ``bench/stream.py``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.stream.dataserver.base import Address, Forwarding
from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.dataserver.haproxy import HAProxyDataServer
from strato.stream.dataserver.proxied import ProxiedDataServer
from tests.stream.netns import Facilities, Host, Loop
from tests.stream.support import free_ports, tls_legs

BACKENDS = {"builtin": "", "haproxy": "haproxy"}


def missing(backend: str) -> str | None:
    """What is missing for ``backend`` on this machine, if anything."""
    binary = BACKENDS[backend]
    return f"{binary} is not installed" if binary and shutil.which(binary) is None else None


def make(backend: str, state: Path) -> BuiltinDataServer | ProxiedDataServer:
    return BuiltinDataServer(state) if backend == "builtin" else HAProxyDataServer(state)


async def _free_port(host: str) -> int:
    # Run on the gateway's loop: the port is free in the gateway's namespace.
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Chain:
    listener: Address  # the consumer gateway's: what the consumer host connects to
    pids: tuple[int, ...]  # the data servers' processes, producer gateway's first


def app_port(f: Facilities) -> int:
    """A port for an application on the producer host: any in a fresh namespace, a free one
    on the loopback fallback."""
    return free_ports(1, f.producer_host.lan)[0] if f.fallback else 5201


@contextlib.contextmanager
def session(
    f: Facilities, backend: str, target: Address, state: Path, tls: bool = False
) -> Iterator[Chain]:
    """Open one session of ``backend`` on both gateways towards ``target`` (on the producer
    host); yield the consumer gateway's listener, which the consumer host connects to.
    Both data servers are closed on exit."""
    pg, cg = f.producer_gateway, f.consumer_gateway
    assert pg.wan is not None
    client_leg, server_leg = tls_legs() if tls else (None, None)
    with Loop(pg) as pl, Loop(cg) as cl:
        pds, cds = make(backend, state / "pg"), make(backend, state / "cg")
        try:
            wan = Address(pg.wan, pl.run(_free_port(pg.wan)))
            pl.run(pds.open(Forwarding("s", (wan,), (target,), tls_in=server_leg)))
            lan = Address(cg.lan, cl.run(_free_port(cg.lan)))
            cl.run(cds.open(Forwarding("s", (lan,), (wan,), tls_out=client_leg)))
            yield Chain(lan, tuple(p for p in (pds.pid("s"), cds.pid("s")) if p))
        finally:
            cl.run(cds.close_all())
            pl.run(pds.close_all())


def wait_listening(host: Host, port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on ``port`` in ``host``'s namespace, without connecting
    (a probe connection would be a client to the server under test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = host.run(["ss", "-Hltn", f"sport = :{port}"], timeout=5).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} in {host.role}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def iperf3(
    f: Facilities, connect: Address, port: int, seconds: float, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """One iperf3 test: ``iperf3 -s`` on the producer host's ``port``, ``iperf3 -c`` on the
    consumer host to ``connect`` in reverse mode (``-R``), so that the bytes flow from the
    producer to the consumer as a stream does; its JSON report."""
    ph = f.producer_host
    server = ph.popen(
        ["iperf3", "-s", "-1", "-B", ph.lan, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(ph, port)
        argv = ["iperf3", "-c", connect.host, "-p", str(connect.port), "-R", "-J"]
        done = f.consumer_host.run([*argv, "-t", str(seconds), *extra], timeout=seconds + 30)
        report: dict[str, Any] = json.loads(done.stdout or b"{}")
        if done.returncode and "error" not in report:
            report["error"] = done.stderr.decode(errors="replace").strip()
        return report
    finally:
        stop(server)
