"""Bulk transfer across two facilities on one machine: iperf3 from the producer host to the
consumer host (``-R``: the producer sends), direct (the gateways routing in the kernel) and
through a session on both gateways: the builtin forwarder, HAProxy, and the builtin
forwarder with TLS 1.3 on the gateway-to-gateway leg. On the network namespaces of
``tests/stream/netns.py`` when they can be made, else on loopback (said in the output).

The variants run in turn, in a different order each round; each figure is the median of the
rounds. CPU: seconds of CPU the gateways' data server processes spent per GB moved (both
gateways together; psutil, user + system, threads included).

Goals (issue 16): builtin >= 0.8x direct and >= 1.0x HAProxy on the same path; builtin with
TLS on the gateway leg >= 0.7x builtin plain.

    .venv/bin/python bench/stream.py   # --seconds 5 --rounds 3 [--wan-rate 5gbit] [--loopback]

``--connect N`` measures instead how long ``strato stream connect`` takes to set up both
gateways on loopback (goal <= 100 ms), N times (``bench/stream_connect.py``). ``--sessions N``
sets up N sessions on one pair of gateways at once, moves data through all of them against
the same connections with no gateway, releases them, then runs ``--cycles`` connect/release
cycles, counting ports, processes and descriptors before and after
(``bench/stream_sessions.py``). ``--tls-limit`` measures how fast one TLS stream can go here
(openssl speed, a bare TLS sender and sink) against the builtin forwarder's TLS leg, on
loopback without iperf3 (``bench/stream_tls.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stream import gateways
from tests.stream.netns import Facilities, facilities, loopback
from tests.stream.support import cpu_seconds

from strato.stream.dataserver.base import Address
from strato.stream.dataserver.builtin import BuiltinDataServer
from strato.stream.dataserver.haproxy import HAProxyDataServer, Splice
from strato.stream.dataserver.proxied import ProxiedDataServer

VARIANTS = {
    "direct": (None, False),
    "builtin": ("builtin", False),
    "haproxy": ("haproxy", False),  # as haproxy.py renders it by default
    "builtin-tls": ("builtin", True),
}
# HAProxy with each choice of kernel splicing (haproxy.py's ``splice``); on request only.
HAPROXY_SPLICE: dict[str, Splice] = {
    "haproxy-nosplice": "off",
    "haproxy-splice-auto": "auto",
    "haproxy-splice": "always",
}
EXTRA = {v: ("haproxy", False) for v in HAPROXY_SPLICE}


@contextlib.contextmanager
def _haproxy(splice: Splice) -> Iterator[None]:
    """gateways.session's data servers, with HAProxy rendered with ``splice``."""
    make = gateways.make

    def made(backend: str, state: Path) -> BuiltinDataServer | ProxiedDataServer:
        return (
            HAProxyDataServer(state, splice=splice)
            if backend == "haproxy"
            else make(backend, state)
        )

    gateways.make = made
    try:
        yield
    finally:
        gateways.make = make


@contextlib.contextmanager
def path(f: Facilities, variant: str, target: Address, state: Path) -> Iterator[gateways.Chain]:
    backend, tls = {**VARIANTS, **EXTRA}[variant]
    if variant in HAPROXY_SPLICE:
        with _haproxy(HAPROXY_SPLICE[variant]), path(f, "haproxy", target, state) as chain:
            yield chain
        return
    if backend is None:
        f.route(True)
        try:
            yield gateways.Chain(target, ())
        finally:
            f.route(False)
        return
    with gateways.session(f, backend, target, state, tls=tls) as chain:
        yield chain


def measure(f: Facilities, variant: str, seconds: float, state: Path) -> tuple[float, float]:
    """Gbit/s received by the consumer, and the data servers' CPU seconds per GB."""
    port = gateways.app_port(f)
    with path(f, variant, Address(f.producer_host.lan, port), state) as chain:
        before = cpu_seconds(chain.pids)
        report = gateways.iperf3(f, chain.listener, port, seconds, ["-O", "1"])
        used = cpu_seconds(chain.pids) - before
    if "error" in report:
        raise RuntimeError(f"{variant}: iperf3: {report['error']}")
    received = report["end"]["sum_received"]
    gbytes = received["bytes"] / 1e9
    return received["bits_per_second"] / 1e9, (used / gbytes if chain.pids else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loopback", action="store_true", help="skip the namespaces")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"which, comma-separated, of {', '.join([*VARIANTS, *EXTRA])}",
    )
    parser.add_argument("--wan-rate", help="shape the WAN each way (tc units: 10gbit)")
    parser.add_argument(
        "--connect", type=int, metavar="N", help="only: setup time of connect, N times"
    )
    parser.add_argument(
        "--sessions", type=int, metavar="N", help="only: N sessions at once on one gateway"
    )
    parser.add_argument(
        "--cycles", type=int, default=1000, help="with --sessions: req/release cycles"
    )
    parser.add_argument(
        "--connect-cycles",
        type=int,
        default=100,
        help="with --sessions: connect/release cycles",
    )
    parser.add_argument(
        "--size", type=float, default=8, help="with --sessions: MB echoed per connection"
    )
    parser.add_argument(
        "--plain-legs", action="store_true", help="with --sessions: no TLS between gateways"
    )
    parser.add_argument(
        "--tls-limit",
        action="store_true",
        help="only: one TLS stream's limit here against the builtin TLS leg, on loopback",
    )
    args = parser.parse_args()
    if args.tls_limit:
        from bench import stream_tls

        stream_tls.main(rounds=args.rounds)
        return
    if args.sessions:
        from bench import stream_sessions

        stream_sessions.main(
            stream_sessions.Options(
                args.sessions,
                args.cycles,
                args.connect_cycles,
                int(args.size * 1e6),
                args.rounds,
                args.plain_legs,
            )
        )
        return
    if args.connect:
        from bench import stream_connect

        stream_connect.main(args.connect)
        return
    variants = [
        v
        for v in args.variants.split(",")
        if gateways.missing({**VARIANTS, **EXTRA}[v][0] or "builtin") is None
    ]
    rates: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    load = [os.getloadavg()[0]]
    made = (
        contextlib.nullcontext(loopback("--loopback"))
        if args.loopback
        else facilities(rate=args.wan_rate)
    )
    with made as f, tempfile.TemporaryDirectory(prefix="strato-bench-") as tmp:
        print(f"path: {f.describe()}")
        print(f"{args.rounds} rounds of {args.seconds:g} s per variant, iperf3 -R -O 1")
        for r in range(args.rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for v in order:
                gbps, cpu_per_gb = measure(f, v, args.seconds, Path(tmp) / f"{v}{r}")
                rates[v].append(gbps)
                cpus[v].append(cpu_per_gb)
                print(f"  round {r + 1} {v:21} {gbps:6.2f} Gbit/s  {cpu_per_gb:5.2f} CPU s/GB")
                time.sleep(0.5)
            load.append(os.getloadavg()[0])
    med = {v: statistics.median(x) for v, x in rates.items()}
    print(f"\nload (1 min) {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} CPUs")
    print(f"{'variant':21} {'median':>8} {'min':>7} {'max':>7}  CPU s/GB (data servers)")
    for v in variants:
        print(
            f"{v:21} {med[v]:8.2f} {min(rates[v]):7.2f} {max(rates[v]):7.2f}"
            f"  {statistics.median(cpus[v]):.2f}"
        )

    def ratio(a: str, b: str, goal: float) -> None:
        if a in med and b in med and med[b] > 0:
            x = med[a] / med[b]
            said = "met" if x >= goal else "NOT met"
            if x < goal and goal - x < 0.01:
                said = "equal within 1%: met only within the measurement's precision"
            print(f"{a} / {b}: {x:.3f}x (goal >= {goal}x: {said})")

    print()
    ratio("builtin", "direct", 0.8)
    ratio("builtin", "haproxy", 1.0)
    for v in HAPROXY_SPLICE:
        ratio("builtin", v, 1.0)
    ratio("builtin-tls", "builtin", 0.7)


if __name__ == "__main__":
    main()
