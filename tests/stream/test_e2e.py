"""Both gateways on loopback: two control servers with builtin data servers, the client's
connect setting up both sides with TLS on the gateway-to-gateway leg, bytes from the
consumer through both gateways to a producer target and back, release freeing ports,
processes and descriptors; a killed forwarder reported; a restarted control server
stopping the forwarders its predecessor left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from strato.auth import Scope
from strato.context import Context
from strato.stream import client
from strato.stream.control.auth import strato_tokens
from strato.stream.control.server import ControlServer, start
from strato.stream.dataserver.base import Address
from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.settings import StreamSettings
from tests.stream.support import open_fds, roundtrip, server

pytestmark = pytest.mark.asyncio
PROD_PORTS, CONS_PORTS = (62200, 62209), (62300, 62309)


@pytest.fixture
def token(context: Context) -> str:
    context.identities.create_user("alice", scopes={Scope.STREAM})
    secret: str = context.identities.create_token("alice", {Scope.STREAM}).secret
    return secret


Gateways = Callable[..., Any]


@pytest_asyncio.fixture
async def gateways(context: Context, tmp_path: Path) -> AsyncIterator[Gateways]:
    started: list[ControlServer] = []

    async def go(
        ports: tuple[int, int], name: str, **extra: Any
    ) -> tuple[ControlServer, BuiltinDataServer]:
        settings = StreamSettings(
            listen="127.0.0.1:0",
            port_first=ports[0],
            port_last=ports[1],
            insecure=True,
            hello_deadline=5.0,
            sweep_interval=0.2,
            **extra,
        )
        ds = BuiltinDataServer(tmp_path / name)
        cs = await start(settings, ds, strato_tokens(context.identities))
        started.append(cs)
        return cs, ds

    yield go
    for cs in started:
        await cs.stop(0)


def gw(cs: ControlServer) -> client.Gateway:
    return client.Gateway(f"127.0.0.1:{cs.port}", insecure=True)


def bound(ports: tuple[int, int]) -> int:
    """How many ports of the range something listens on, each once however many processes
    hold its socket; not this test's own targets (their ports, of the system's choosing,
    may fall in the range)."""
    return len(
        {
            c.laddr.port
            for c in psutil.net_connections("tcp")
            if c.status == "LISTEN"
            and ports[0] <= c.laddr.port <= ports[1]
            and c.pid != os.getpid()
        }
    )


async def test_connect_streams_through_both_gateways_and_release_frees_all(
    gateways: Gateways, token: str
) -> None:
    prod, prod_ds = await gateways(PROD_PORTS, "p")
    cons, cons_ds = await gateways(CONS_PORTS, "c")
    with server("echo") as target:
        # A first session made and released: what the client and grpc make once per
        # process (its channels' pollers, the default thread pool) is counted in the base.
        warm = await client.connect(gw(prod), gw(cons), [str(target)], token, num_conn=2)
        await client.release(warm.uid, [gw(prod), gw(cons)], token)
        fds = open_fds()
        started = time.perf_counter()
        conn = await client.connect(gw(prod), gw(cons), [str(target)], token, num_conn=2)
        took = (time.perf_counter() - started) * 1000
        print(f"\nconnect set up both sides in {took:.1f} ms (goal <= 100 ms)")
        assert conn.leg == "tls"
        assert len(conn.listeners) == 2
        assert all(
            int(a.rsplit(":", 1)[1]) in range(CONS_PORTS[0], CONS_PORTS[1] + 1)
            for a in conn.listeners
        )
        for listener in conn.listeners:
            host, port = listener.rsplit(":", 1)
            assert await asyncio.to_thread(roundtrip, Address(host, int(port)), 2_000_000)
        pids = [prod_ds.pid(conn.uid), cons_ds.pid(conn.uid)]
        assert all(p is not None and psutil.pid_exists(p) for p in pids)
        assert bound(PROD_PORTS) == 2
        assert bound(CONS_PORTS) == 2
        await client.release(conn.uid, [gw(prod), gw(cons)], token)
    for p in pids:
        assert p is not None
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
    assert bound(PROD_PORTS) == 0
    assert bound(CONS_PORTS) == 0
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0
    assert open_fds() <= fds + 2  # the client's channels closed; grpc may keep a pipe


async def test_the_wan_leg_is_tls_with_pinned_certificates(gateways: Gateways, token: str) -> None:
    prod, _ = await gateways(PROD_PORTS, "p")
    cons, _ = await gateways(CONS_PORTS, "c")
    with server("echo") as target:
        conn = await client.connect(gw(prod), gw(cons), [str(target)], token)
        # A plain client at the producer gateway's listener is not let through.
        host, port = conn.producer_listeners[0].rsplit(":", 1)
        assert not await asyncio.to_thread(_plain_works, Address(host, int(port)))
        await client.release(conn.uid, [gw(prod), gw(cons)], token)


def _plain_works(address: Address) -> bool:
    try:
        return roundtrip(address, 10_000, timeout=3)
    except OSError:
        return False


async def test_mixed_legs_are_refused_and_nothing_stays(gateways: Gateways, token: str) -> None:
    prod, _ = await gateways(PROD_PORTS, "p")
    cons, _ = await gateways(CONS_PORTS, "c", leg_tls=False)
    with pytest.raises(client.StreamClientError, match="configure both gateways alike"):
        await client.connect(gw(prod), gw(cons), ["127.0.0.1:9"], token)
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0


async def test_a_killed_forwarder_is_reported_to_the_client(gateways: Gateways, token: str) -> None:
    prod, _ = await gateways(PROD_PORTS, "p")
    cons, cons_ds = await gateways(CONS_PORTS, "c")
    with server("echo") as target:
        conn = await client.connect(gw(prod), gw(cons), [str(target)], token)
        pid = cons_ds.pid(conn.uid)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        async with client.Control(gw(cons), token) as c:
            failed = ""
            for _ in range(50):
                await asyncio.sleep(0.1)
                try:
                    await c.check(conn.uid)
                except client.StreamClientError as exc:
                    failed = str(exc)
                    break
        assert "has failed" in failed, "the killed forwarder was never reported"
        await client.release(conn.uid, [gw(prod), gw(cons)], token)
    assert cons.sessions.pool.reserved == 0


async def test_a_restarted_control_server_stops_orphaned_forwarders(
    context: Context, tmp_path: Path, gateways: Gateways, token: str
) -> None:
    prod, prod_ds = await gateways(PROD_PORTS, "p")
    cons, _ = await gateways(CONS_PORTS, "c")
    with server("echo") as target:
        conn = await client.connect(gw(prod), gw(cons), [str(target)], token)
    pid = prod_ds.pid(conn.uid)
    assert pid is not None
    # The producer's control server dies without closing anything (a crash).
    prod.sweeper.cancel()
    await prod.server.stop(0)
    prod_ds._sessions.clear()
    os.close(prod_ds._held or -1)  # the kernel drops a dead process's lock on its state
    prod_ds._held = None
    assert psutil.pid_exists(pid)
    assert bound(PROD_PORTS) == 1
    again = await start(
        StreamSettings(
            listen="127.0.0.1:0", port_first=PROD_PORTS[0], port_last=PROD_PORTS[1], insecure=True
        ),
        BuiltinDataServer(tmp_path / "p"),
        strato_tokens(context.identities),
    )
    try:
        # A killed process's listening sockets may outlive it by a few milliseconds.
        deadline = time.monotonic() + 10
        while bound(PROD_PORTS) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert bound(PROD_PORTS) == 0
    finally:
        await again.stop(0)


async def test_the_command_line_connects_and_releases(gateways: Gateways, token: str) -> None:
    prod, _ = await gateways(PROD_PORTS, "p")
    cons, _ = await gateways(CONS_PORTS, "c")
    env = {**os.environ, "STRATO_TOKEN": token}
    with server("echo") as target:
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "strato",
                "stream",
                "connect",
                "--insecure",
                "--producer-gateway",
                f"127.0.0.1:{prod.port}",
                "--consumer-gateway",
                f"127.0.0.1:{cons.port}",
                "--producer-targets",
                str(target),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
        host, port = lines["listeners"].strip('"').rsplit(":", 1)
        assert await asyncio.to_thread(roundtrip, Address(host, int(port)), 1_000_000)
        rel = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "strato",
                "stream",
                "release",
                lines["uid"],
                "--insecure",
                "--s2cs",
                f"127.0.0.1:{prod.port}",
                "--s2cs",
                f"127.0.0.1:{cons.port}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert rel.stdout.count("Release completed") == 2, rel.stderr
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0
