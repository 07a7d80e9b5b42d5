"""Helpers of the data server tests: free ports, echo and identity servers on threads,
per-session certificates (what the control server makes from a CSPRNG)."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
from collections.abc import Iterable, Iterator

import psutil  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strato.stream.dataserver.base import Address, TlsLeg


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((host, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listeners(n: int, host: str = "127.0.0.1") -> tuple[Address, ...]:
    return tuple(Address(host, p) for p in free_ports(n, host))


@contextlib.contextmanager
def server(handler: str = "echo", ident: bytes = b"", host: str = "127.0.0.1") -> Iterator[Address]:
    """A TCP server on a thread: ``echo`` sends back what it gets; ``ident`` answers each
    connection with ``ident`` and closes."""
    lsock = socket.socket()
    lsock.bind((host, 0))
    lsock.listen(64)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            if handler == "ident":
                conn.sendall(ident)
                return
            while data := conn.recv(1 << 20):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield Address(host, lsock.getsockname()[1])
    finally:
        stop.set()
        lsock.close()


def roundtrip(address: Address, size: int = 4_000_000, timeout: float = 20.0) -> bool:
    """Send ``size`` random bytes through ``address`` to an echo server; whether the same
    bytes come back."""
    data = os.urandom(size)
    got = bytearray()
    with socket.create_connection((address.host, address.port), timeout=timeout) as c:

        def send() -> None:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        while chunk := c.recv(1 << 20):
            got += chunk
        sender.join()
    return bytes(got) == data


def exchange(address: Address, size: int = 4_000_000, timeout: float = 20.0) -> bool:
    """Like :func:`roundtrip` without the half-close: read back ``size`` bytes, then close."""
    data = os.urandom(size)
    got = bytearray()
    with socket.create_connection((address.host, address.port), timeout=timeout) as c:
        sender = threading.Thread(target=c.sendall, args=(data,))
        sender.start()
        while len(got) < size and (chunk := c.recv(1 << 20)):
            got += chunk
        sender.join()
    return bytes(got) == data


def read_all(address: Address, timeout: float = 10.0) -> bytes:
    with socket.create_connection((address.host, address.port), timeout=timeout) as c:
        got = bytearray()
        while chunk := c.recv(65536):
            got += chunk
        return bytes(got)


def cert_pair(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def tls_legs() -> tuple[TlsLeg, TlsLeg]:
    """The dialing gateway's leg and the accepting gateway's, each pinning the other."""
    c_cert, c_key = cert_pair("gateway-a")
    s_cert, s_key = cert_pair("gateway-b")
    return TlsLeg(c_cert, c_key, s_cert, "client"), TlsLeg(s_cert, s_key, c_cert, "server")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU seconds the processes ``pids`` have used (those gone: none)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total
