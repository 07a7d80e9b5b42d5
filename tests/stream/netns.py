"""Two facilities on one machine, out of Linux network namespaces the test makes and removes.

    producer host --LAN-- producer gateway ==WAN== consumer gateway --LAN-- consumer host
      10.71.1.2          10.71.1.1 | 10.71.2.1      10.71.2.2 | 10.71.3.1      10.71.3.2

Each of the four is its own namespace; each link is a veth pair created straight inside the
two namespaces it joins, so nothing appears in the machine's own namespace and only the
namespace names (unique per :func:`facilities` call) could collide between parallel runs.
The WAN leg gets ``tc netem`` delay when the kernel has netem. The gateways do not route:
as between real facilities, a host reaches the other side only through the data servers
(:meth:`Facilities.route` turns routing on, for a benchmark's "direct" path).

Where namespaces cannot be made (no CAP_NET_ADMIN, no ``ip``), :func:`facilities` says why
in ``Facilities.fallback`` and gives four loopback addresses instead: the same tests then
run on loopback. Only loopback and these namespaces carry traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
# Every `ip`/`tc` call is bounded; none should take more than milliseconds.
COMMAND_TIMEOUT = 10.0
WAN_DELAY = "5ms"


@dataclass(frozen=True)
class Host:
    role: str  # "producer-host", "producer-gateway", "consumer-gateway", "consumer-host"
    ns: str | None  # its namespace; None on the loopback fallback
    lan: str  # its address on its LAN (the gateways': the side of their own host)
    wan: str | None = None  # a gateway's address on the WAN

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *argv] if self.ns else list(argv)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(argv), **kwargs)

    def run(
        self, argv: Sequence[str], timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.argv(argv), timeout=timeout, capture_output=True, **kwargs)


@dataclass
class Facilities:
    producer_host: Host
    producer_gateway: Host
    consumer_gateway: Host
    consumer_host: Host
    fallback: str | None = None  # why this is loopback, when it is
    delay: str | None = None  # the WAN leg's netem delay, when the kernel has netem
    rate: str | None = None  # the WAN's rate each way, when shaped
    notes: list[str] = field(default_factory=list)

    @property
    def hosts(self) -> tuple[Host, Host, Host, Host]:
        return (
            self.producer_host,
            self.producer_gateway,
            self.consumer_gateway,
            self.consumer_host,
        )

    def describe(self) -> str:
        if self.fallback:
            return f"loopback ({self.fallback})"
        delay = f"netem {self.delay} on the WAN" if self.delay else "no WAN delay"
        rate = f", WAN shaped to {self.rate} each way" if self.rate else ", WAN unshaped"
        return f"network namespaces, {delay}{rate}" + "".join(f"; {n}" for n in self.notes)

    def route(self, on: bool = True) -> None:
        """Let the gateways route between the LANs (kernel forwarding): the direct path."""
        for gw in (self.producer_gateway, self.consumer_gateway):
            if gw.ns:
                _ip(gw.ns, "sysctl", "-qw", f"net.ipv4.ip_forward={int(on)}", prefix=False)


def _sh(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, timeout=COMMAND_TIMEOUT)
    if done.returncode:
        raise OSError(f"{' '.join(argv)}: {done.stderr.decode(errors='replace').strip()}")


def _ip(ns: str, *args: str, prefix: bool = True) -> None:
    _sh(["ip", "netns", "exec", ns, *(["ip", *args] if prefix else args)])


def loopback(reason: str) -> Facilities:
    # Distinct loopback addresses keep the four roles apart in the tests' assertions.
    return Facilities(
        Host("producer-host", None, "127.0.71.2"),
        Host("producer-gateway", None, "127.0.71.1", "127.0.72.1"),
        Host("consumer-gateway", None, "127.0.73.1", "127.0.72.2"),
        Host("consumer-host", None, "127.0.73.2"),
        fallback=reason,
    )


@contextlib.contextmanager
def facilities(delay: str | None = WAN_DELAY, rate: str | None = None) -> Iterator[Facilities]:
    """The four namespaces and three links, removed on exit whatever happened. ``rate``
    (``tc`` units, e.g. ``10gbit``) shapes the WAN each way, as a facility's link is."""
    if shutil.which("ip") is None:
        yield loopback("the ip command is missing")
        return
    tag = f"strato-{secrets.token_hex(4)}"
    names = {r: f"{tag}-{r}" for r in ("ph", "pg", "cg", "ch")}
    made: list[str] = []
    try:
        try:
            for ns in names.values():
                _sh(["ip", "netns", "add", ns])
                made.append(ns)
        except OSError as e:
            yield loopback(f"network namespaces cannot be made here: {e}")
            return
        f = _build(names, delay, rate)
        yield f
    finally:
        for ns in made:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                _sh(["ip", "netns", "del", ns])


def _build(names: dict[str, str], delay: str | None, rate: str | None) -> Facilities:
    ph, pg, cg, ch = names["ph"], names["pg"], names["cg"], names["ch"]
    links = [(ph, "lan0", "10.71.1.2", pg, "lan0", "10.71.1.1"),
             (pg, "wan0", "10.71.2.1", cg, "wan0", "10.71.2.2"),
             (cg, "lan0", "10.71.3.1", ch, "lan0", "10.71.3.2")]  # fmt: skip
    for ns in names.values():
        _ip(ns, "link", "set", "lo", "up")
    for a, a_if, a_ip, b, b_if, b_ip in links:
        _sh(["ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b])
        for ns, ifname, ip in ((a, a_if, a_ip), (b, b_if, b_ip)):
            _ip(ns, "addr", "add", f"{ip}/24", "dev", ifname)
            _ip(ns, "link", "set", ifname, "up")
    _ip(ph, "route", "add", "default", "via", "10.71.1.1")
    _ip(ch, "route", "add", "default", "via", "10.71.3.1")
    _ip(pg, "route", "add", "10.71.3.0/24", "via", "10.71.2.2")
    _ip(cg, "route", "add", "10.71.1.0/24", "via", "10.71.2.1")
    f = Facilities(
        Host("producer-host", ph, "10.71.1.2"),
        Host("producer-gateway", pg, "10.71.1.1", "10.71.2.1"),
        Host("consumer-gateway", cg, "10.71.3.1", "10.71.2.2"),
        Host("consumer-host", ch, "10.71.3.2"),
    )
    for ns in (pg, cg):
        # netem delays what leaves a device: on both ends, each direction is delayed and a
        # round trip over the WAN takes twice `delay` more. Without netem, tbf shapes alone.
        shaping = ["rate", rate] if rate else []
        try:
            if delay:
                _sh(["tc", "-n", ns, "qdisc", "add", "dev", "wan0", "root", "netem",
                     "delay", delay, *shaping])  # fmt: skip
                f.delay = delay
                continue
        except OSError as e:
            if ns == pg:
                f.notes.append(f"no netem in this kernel, the WAN has no delay ({e})")
        if rate:
            _sh(["tc", "-n", ns, "qdisc", "add", "dev", "wan0", "root", "tbf", "rate", rate,
                 "burst", "4mb", "latency", "50ms"])  # fmt: skip
    f.rate = rate
    return f


_libc = ctypes.CDLL(None, use_errno=True)


def enter(ns: str) -> None:
    """Move the calling thread (only it) into namespace ``ns``: the sockets it opens and the
    processes it starts from then on live there."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Loop:
    """An asyncio event loop on its own thread inside a host's namespace: what a control
    server on that gateway would be. A data server opened through :meth:`run` binds its
    listeners and starts its processes there."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        started: Future[None] = Future()

        def main() -> None:
            try:
                if host.ns:
                    enter(host.ns)
            except OSError as e:
                started.set_exception(e)
                return
            asyncio.set_event_loop(self.loop)
            started.set_result(None)
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name=f"loop-{host.role}", daemon=True)
        self.thread.start()
        started.result(COMMAND_TIMEOUT)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(COMMAND_TIMEOUT)
        self.loop.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
