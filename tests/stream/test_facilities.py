"""Streams across two facilities on one machine (:mod:`tests.stream.netns`): a producer host
behind a producer gateway, a WAN, a consumer gateway and a consumer host, each its own
network namespace (loopback where namespaces cannot be made, said as a warning). Data
flows producer host -> producer gateway -> WAN -> consumer gateway -> consumer host through
the data servers, as in SciStream's demos: iperf3, and a ZeroMQ PUB/SUB pair; plain, with
the gateway-to-gateway leg in TLS, and through HAProxy."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.stream.dataserver.base import Address
from tests.stream import gateways
from tests.stream.gateways import app_port, session, stop, wait_listening
from tests.stream.netns import Facilities, facilities

PATHS = [("builtin", False), ("builtin", True), ("haproxy", False)]
IDS = ["builtin", "builtin-tls", "haproxy"]
PEER = str(Path(__file__).with_name("zmq_peer.py"))


@pytest.fixture
def fac() -> Iterator[Facilities]:
    with facilities() as f:
        if f.fallback or f.notes:
            warnings.warn(f"facilities: {f.describe()}", stacklevel=1)
        yield f


def _needs(backend: str) -> None:
    if why := gateways.missing(backend):
        pytest.skip(why)


def test_the_facilities_reach_each_other_only_through_the_gateways(fac: Facilities) -> None:
    if fac.fallback:
        pytest.skip(f"on loopback every address reaches every other ({fac.fallback})")
    probe = "import socket,sys; socket.create_connection((sys.argv[1], 9), timeout=2)"
    # A gateway reaches the other gateway over the WAN (refused: the port is closed, but
    # the address answers); a host does not reach the other facility's host.
    wan = fac.consumer_gateway.run([sys.executable, "-c", probe, "10.71.2.1"])
    assert b"ConnectionRefusedError" in wan.stderr
    cross = fac.consumer_host.run([sys.executable, "-c", probe, fac.producer_host.lan])
    assert cross.returncode != 0
    assert b"ConnectionRefusedError" not in cross.stderr
    names = [h.ns or "" for h in fac.hosts]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert all(n in listed for n in names)


def test_the_namespaces_are_removed_whatever_happens() -> None:
    names: list[str] = []

    def failing_test() -> None:
        with facilities() as f:
            names.extend(h.ns or "" for h in f.hosts)
            raise RuntimeError("a failing test")

    with pytest.raises(RuntimeError):
        failing_test()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n and n in listed for n in names)


@pytest.mark.parametrize(("backend", "tls"), PATHS, ids=IDS)
def test_iperf3_through_both_gateways(
    fac: Facilities, backend: str, tls: bool, tmp_path: Path
) -> None:
    _needs(backend)
    port = app_port(fac)
    target = Address(fac.producer_host.lan, port)
    with session(fac, backend, target, tmp_path, tls=tls) as chain:
        report = gateways.iperf3(fac, chain.listener, port, seconds=2)
    assert "error" not in report, report.get("error")
    received = report["end"]["sum_received"]
    assert received["bytes"] > 1_000_000
    assert report["start"]["connecting_to"]["host"] == fac.consumer_gateway.lan


@pytest.mark.parametrize(("backend", "tls"), PATHS, ids=IDS)
def test_zeromq_pub_sub_through_both_gateways(
    fac: Facilities, backend: str, tls: bool, tmp_path: Path
) -> None:
    _needs(backend)
    port = app_port(fac)
    count = 300
    ph, ch = fac.producer_host, fac.consumer_host
    with session(fac, backend, Address(ph.lan, port), tmp_path, tls=tls) as chain:
        pub = ph.popen(
            [sys.executable, PEER, "pub", f"{ph.lan}:{port}", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_listening(ph, port)
            sub = ch.run([sys.executable, PEER, "sub", str(chain.listener)], timeout=60)
            assert pub.wait(30) == 0, pub.stderr.read() if pub.stderr else ""
        finally:
            stop(pub)
    assert sub.returncode == 0, sub.stderr.decode()
    got = json.loads(sub.stdout)
    assert got == {
        "received": count,
        "bytes": sum(1 + (i * 7919) % 200_000 for i in range(count)),
        "intact": True,
        "in_order": True,
        "ended": True,
    }
