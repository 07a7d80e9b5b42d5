"""How fast one TLS stream can go on this machine, and how close the builtin forwarder's TLS
leg comes to it, on loopback without iperf3: a sender process writing one buffer from memory
over and over, a sink process reading into one buffer, nothing else.

- openssl speed: AES-256-GCM on one core, encrypting and decrypting 16 KiB blocks (a TLS
  record's size): the cipher alone.
- tcp: sender -> sink, plain. tls: the same with the sender a TLS 1.3 client and the sink
  a TLS server, with the forwarder's own contexts (``forwarder._context``: TLS 1.3 only,
  per-session certificates pinned): one encrypt and one decrypt per byte, on separate
  processes, no relaying. The most a TLS stream moves through encrypt + decrypt here.
- builtin, builtin-tls: sender -> forwarder (the consumer's gateway) -> forwarder (the
  producer's) -> sink, through two builtin data servers on loopback, the leg between the
  forwarders plain or TLS, as a stream crosses two gateways.

Each row: Gbit/s (the sink's bytes over the time from its first byte to the end), and CPU
seconds per GB of the sender, the sink and the forwarders. The paths run in turn, in a
different order each round; medians of the rounds.

    .venv/bin/python bench/stream.py --tls-limit   # [--gbytes 2] [--rounds 3]
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stream.support import cpu_seconds, free_ports, tls_legs

from strato.stream.dataserver import forwarder
from strato.stream.dataserver.base import Address, Forwarding, TlsLeg
from strato.stream.dataserver.builtin import BuiltinDataServer

BUFFER = 1 << 20
PATHS = ("tcp", "tls", "builtin", "builtin-tls")


def _leg(leg: TlsLeg) -> dict[str, str]:
    """A leg as the forwarder's configuration carries it."""
    return {
        "cert": leg.cert_pem.decode(),
        "key": leg.key_pem.decode(),
        "peer_cert": leg.peer_cert_pem.decode(),
    }


def _sink(port: int, leg: dict[str, str] | None, ready: Connection, out: Connection) -> None:
    """Accept one connection (TLS server with ``leg``), read it to its end; send back the
    bytes, seconds from the first byte to the end, and this process's CPU seconds."""
    lsock = socket.create_server(("127.0.0.1", port))
    ready.send(True)
    conn, _ = lsock.accept()
    if leg is not None:
        conn = forwarder._context(leg, True).wrap_socket(conn, server_side=True)
    buf = bytearray(BUFFER)
    got = conn.recv_into(buf)
    cpu, began = time.process_time(), time.perf_counter()
    while n := conn.recv_into(buf):
        got += n
    out.send((got, time.perf_counter() - began, time.process_time() - cpu))
    conn.close()


def _sender(
    address: tuple[str, int], leg: dict[str, str] | None, total: int, out: Connection
) -> None:
    """Connect (TLS client with ``leg``), send ``total`` bytes of one buffer, half-close;
    send back this process's CPU seconds."""
    sock = socket.create_connection(address)
    if leg is not None:
        sock = forwarder._context(leg, False).wrap_socket(sock)
    data = memoryview(os.urandom(BUFFER))
    cpu = time.process_time()
    for _ in range(total // BUFFER):
        sock.sendall(data)
    socket.socket.shutdown(sock, socket.SHUT_WR)  # a TCP FIN, as the forwarder passes it on
    out.send(time.process_time() - cpu)
    sock.recv(1)  # until the other side closes
    sock.close()


@contextlib.asynccontextmanager
async def _forwarders(
    path: str, sink: Address, state: Path
) -> AsyncIterator[tuple[Address, list[int]]]:
    """Two builtin data servers in series in front of ``sink``: where the sender connects,
    and the forwarders' pids."""
    if path in ("tcp", "tls"):
        yield sink, []
        return
    client_leg, server_leg = tls_legs() if path == "builtin-tls" else (None, None)
    producer, consumer = BuiltinDataServer(state / "p"), BuiltinDataServer(state / "c")
    wan, lan = (Address("127.0.0.1", p) for p in free_ports(2))
    try:
        await producer.open(Forwarding("s", (wan,), (sink,), tls_in=server_leg))
        await consumer.open(Forwarding("s", (lan,), (wan,), tls_out=client_leg))
        yield lan, [p for p in (producer.pid("s"), consumer.pid("s")) if p]
    finally:
        await consumer.close_all()
        await producer.close_all()


async def measure(path: str, total: int, state: Path) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    client_leg, server_leg = tls_legs()
    tls = path == "tls"
    port = free_ports(1)[0]
    ready_r, ready_w = ctx.Pipe(False)
    sink_r, sink_w = ctx.Pipe(False)
    send_r, send_w = ctx.Pipe(False)
    sink = ctx.Process(
        target=_sink, args=(port, _leg(server_leg) if tls else None, ready_w, sink_w)
    )
    sink.start()
    try:
        await asyncio.to_thread(ready_r.recv)
        async with _forwarders(path, Address("127.0.0.1", port), state) as (entry, pids):
            before = cpu_seconds(pids)
            sender = ctx.Process(
                target=_sender,
                args=(
                    (entry.host, entry.port),
                    _leg(client_leg) if tls else None,
                    total,
                    send_w,
                ),
            )
            sender.start()
            got, seconds, sink_cpu = await asyncio.to_thread(sink_r.recv)
            sender_cpu = await asyncio.to_thread(send_r.recv)
            relay_cpu = cpu_seconds(pids) - before
            await asyncio.to_thread(sender.join, 30)
    finally:
        await asyncio.to_thread(sink.join, 30)
        for proc in (sink,):
            if proc.is_alive():
                proc.kill()
    if got != total:
        raise RuntimeError(f"{path}: {got} bytes of {total} arrived")
    gb = got / 1e9
    return {
        "gbps": got * 8 / seconds / 1e9,
        "sender": sender_cpu / gb,
        "sink": sink_cpu / gb,
        "relay": relay_cpu / gb,
    }


def openssl_speed(seconds: int = 2) -> dict[str, float]:
    """GB/s of AES-256-GCM on one core, 16 KiB blocks, encrypting and decrypting."""
    out = {}
    for what, extra in (("encrypt", []), ("decrypt", ["-decrypt"])):
        argv = ["openssl", "speed", *extra, "-evp", "aes-256-gcm", "-bytes", "16384"]
        done = subprocess.run(
            [*argv, "-seconds", str(seconds)],
            capture_output=True,
            text=True,
        )
        said = re.search(r"AES-256-GCM\s+([\d.]+)k", done.stdout, re.IGNORECASE)
        out[what] = float(said.group(1)) * 1000 / 1e9 if said else float("nan")
    return out


def main(gbytes: float = 2.0, rounds: int = 3, paths: tuple[str, ...] = PATHS) -> None:
    load = [os.getloadavg()[0]]
    speed = openssl_speed()
    print(
        f"openssl speed, AES-256-GCM, 16 KiB blocks, one core: encrypt {speed['encrypt']:.2f} "
        f"GB/s ({speed['encrypt'] * 8:.1f} Gbit/s), decrypt {speed['decrypt']:.2f} GB/s "
        f"({speed['decrypt'] * 8:.1f} Gbit/s); {os.cpu_count()} CPUs"
    )
    total = int(gbytes * 1e9) // BUFFER * BUFFER
    results: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    print(f"{rounds} rounds of {total / 1e9:.2f} GB per path, one connection, loopback")
    with tempfile.TemporaryDirectory(prefix="strato-bench-tls-") as tmp:
        for r in range(rounds):
            order = paths[r % len(paths) :] + paths[: r % len(paths)]
            for p in order:
                got = asyncio.run(measure(p, total, Path(tmp) / f"{p}{r}"))
                results[p].append(got)
                print(
                    f"  round {r + 1} {p:12} {got['gbps']:6.2f} Gbit/s  CPU s/GB: sender "
                    f"{got['sender']:.2f}, sink {got['sink']:.2f}, forwarders {got['relay']:.2f}"
                )
            load.append(os.getloadavg()[0])
    print(f"\nload (1 min) {min(load):.1f}-{max(load):.1f}")
    print(f"{'path':12} {'median':>7} {'min':>6} {'max':>6}  CPU s/GB sender, sink, forwarders")
    med: dict[str, float] = {}
    for p in paths:
        rates = [x["gbps"] for x in results[p]]
        med[p] = statistics.median(rates)
        cpu = {k: statistics.median(x[k] for x in results[p]) for k in ("sender", "sink", "relay")}
        print(
            f"{p:12} {med[p]:7.2f} {min(rates):6.2f} {max(rates):6.2f}  "
            f"{cpu['sender']:.2f}, {cpu['sink']:.2f}, {cpu['relay']:.2f}"
        )
    print()
    for a, b in (("tls", "tcp"), ("builtin-tls", "tls"), ("builtin-tls", "builtin")):
        if a in med and b in med:
            print(f"{a} / {b}: {med[a] / med[b]:.2f}x")


def _args(argv: list[str] | None = None) -> Any:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gbytes", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS))
    return parser.parse_args(argv)


if __name__ == "__main__":
    a = _args()
    main(a.gbytes, a.rounds, tuple(a.paths.split(",")))
