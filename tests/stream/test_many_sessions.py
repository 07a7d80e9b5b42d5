"""A hundred sessions at once on one gateway (issue 16): two control servers on loopback
with builtin data servers and TLS gateway-to-gateway legs, a hundred `connect`s made
concurrently, each consumer listener reaching its own producer target and no other's,
then all released: no port bound, no forwarder process left, the pools empty."""

from __future__ import annotations

import asyncio
import contextlib
import os

import psutil  # type: ignore[import-untyped]
import pytest

from strato.stream import client
from strato.stream.dataserver.base import Address
from tests.stream.support import read_all, server
from tests.stream.test_e2e import Gateways, gateways, gw, token

pytestmark = pytest.mark.asyncio
__all__ = ["gateways", "token"]
SESSIONS = 100
PROD_PORTS, CONS_PORTS = (63000, 63199), (63200, 63399)


def bound_ports(ports: tuple[int, int]) -> set[int]:
    """The ports of the range something listens on, each once however many processes
    hold its socket; not this test's own targets (ports of the system's choosing, which
    may fall in the range, as may other programs' on this machine)."""
    return {
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.status == "LISTEN" and ports[0] <= c.laddr.port <= ports[1] and c.pid != os.getpid()
    }


def address(listener: str) -> Address:
    host, port = listener.rsplit(":", 1)
    return Address(host, int(port))


async def test_a_hundred_sessions_at_once_each_reaching_its_own_target(
    gateways: Gateways, token: str
) -> None:
    prod, prod_ds = await gateways(PROD_PORTS, "p")
    cons, cons_ds = await gateways(CONS_PORTS, "c")
    with contextlib.ExitStack() as stack:
        targets = [
            stack.enter_context(server("ident", ident=f"session {i:03d}".encode()))
            for i in range(SESSIONS)
        ]
        conns = await asyncio.gather(
            *(client.connect(gw(prod), gw(cons), [str(t)], token) for t in targets)
        )
        assert len({c.uid for c in conns}) == SESSIONS
        used = {address(a).port for c in conns for a in (*c.listeners, *c.producer_listeners)}
        assert len(bound_ports(PROD_PORTS) & used) == SESSIONS
        assert bound_ports(CONS_PORTS) & used == {address(c.listeners[0]).port for c in conns}
        assert all(c.leg == "tls" for c in conns)
        answers = await asyncio.gather(
            *(asyncio.to_thread(read_all, address(c.listeners[0])) for c in conns)
        )
        assert answers == [f"session {i:03d}".encode() for i in range(SESSIONS)]
        pids = [p for c in conns for p in (prod_ds.pid(c.uid), cons_ds.pid(c.uid))]
        assert len(set(pids)) == 2 * SESSIONS  # a forwarder per session and gateway
        await asyncio.gather(*(client.release(c.uid, [gw(prod), gw(cons)], token) for c in conns))
    for pid in pids:
        assert pid is not None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert bound_ports(PROD_PORTS) & used == set()
    assert bound_ports(CONS_PORTS) & used == set()
    assert prod.sessions.pool.reserved == 0
    assert cons.sessions.pool.reserved == 0
