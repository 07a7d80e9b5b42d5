"""The builtin data server's forwarding process: one per session, started by
:mod:`strato.stream.dataserver.builtin` with the session's listening sockets already bound
(passed as inherited file descriptors, so a port that cannot be bound is reported by the
parent, naming it, before anything starts).

Its stdin carries JSON lines from the parent: first the session's configuration, then
commands (``counters``, ``update``); its stdout answers with one JSON line each. No pickle:
only JSON crosses the process boundary. A process started ahead of its session (a spare,
already past Python's start and its imports) waits for that first line, then receives the
listening sockets over the Unix socket named by ``STRATO_FORWARDER_FDSOCK``.

Each accepted connection is forwarded to its listener's target by two threads, one per
direction. Plain legs move bytes with ``os.splice`` through a pipe, so they never enter
user space; a TLS leg (or a kernel that refuses splice) falls back to ``recv_into`` and
``sendall`` over one large buffer. Blocking calls release the GIL, so the threads run in
parallel. Sockets have large buffers and TCP_NODELAY, and no idle timeout: a stream quiet
for hours stays open.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

# Large enough to keep a long fat pipe full; the kernel caps it at net.core.*mem_max.
SOCKET_BUFFER = 4 * 1024 * 1024
# A pipe of 1 MiB moves up to that much per splice call (the default pipe holds 64 KiB).
PIPE_SIZE = 1024 * 1024
CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 10.0
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the fcntl module only from 3.10 on Linux


@dataclass
class Listener:
    host: str
    port: int
    sock: socket.socket
    target: tuple[str, int]
    connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, inbound: bool, n: int) -> None:
        with self.lock:
            if inbound:
                self.bytes_in += n
            else:
                self.bytes_out += n


def _tune(sock: socket.socket) -> None:
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _context(leg: dict[str, str], server: bool) -> ssl.SSLContext:
    """TLS 1.3 only, this side's certificate, the peer's certificate pinned (it is the only
    trust anchor, and :func:`_check_peer` also compares it byte for byte)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the pin, not a name, says who the peer is
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # A half-close is passed on as a TCP FIN without close_notify (the other direction goes
    # on, as in TCP); without this OpenSSL 3 calls that end of file an error and fails the
    # whole connection, cutting the direction still open. stunnel does the same.
    ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    ctx.load_verify_locations(cadata=leg["peer_cert"])
    # load_cert_chain reads files only: the key sits in a private file for an instant.
    fd, path = tempfile.mkstemp(prefix="strato-fwd-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(leg["cert"] + "\n" + leg["key"])
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


def _check_peer(conn: ssl.SSLSocket, pinned_der: bytes) -> None:
    cipher = conn.cipher()
    if conn.getpeercert(binary_form=True) != pinned_der:
        raise ssl.SSLError("the peer's certificate is not the pinned one")
    if cipher is None or "GCM" not in cipher[0]:
        raise ssl.SSLError(f"cipher {cipher and cipher[0]} is not AES-GCM")


class Forwarder:
    def __init__(self, config: dict[str, Any], fds: list[int]) -> None:
        targets = [(t["host"], int(t["port"])) for t in config["targets"]]
        self.listeners = []
        for i, (spec, fd) in enumerate(zip(config["listeners"], fds, strict=True)):
            sock = socket.socket(fileno=fd)
            self.listeners.append(
                Listener(spec["host"], int(spec["port"]), sock, targets[i % len(targets)])
            )
        self.tls_in = _context(config["tls_in"], True) if config.get("tls_in") else None
        self.tls_out = _context(config["tls_out"], False) if config.get("tls_out") else None
        self.pin_in = _der(config["tls_in"]) if config.get("tls_in") else b""
        self.pin_out = _der(config["tls_out"]) if config.get("tls_out") else b""

    def start(self) -> None:
        for listener in self.listeners:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def update(self, targets: list[dict[str, Any]]) -> None:
        pairs = [(t["host"], int(t["port"])) for t in targets]
        for i, listener in enumerate(self.listeners):
            listener.target = pairs[i % len(pairs)]  # new connections go to the new target

    def counters(self) -> list[dict[str, Any]]:
        out = []
        for lst in self.listeners:
            with lst.lock:
                out.append(
                    {
                        "host": lst.host,
                        "port": lst.port,
                        "connections": lst.connections,
                        "bytes_in": lst.bytes_in,
                        "bytes_out": lst.bytes_out,
                    }
                )
        return out

    def _accept(self, listener: Listener) -> None:
        while True:
            try:
                client, _ = listener.sock.accept()
            except OSError:
                return
            with listener.lock:
                listener.connections += 1
            threading.Thread(target=self._connect, args=(listener, client), daemon=True).start()

    def _connect(self, listener: Listener, client: socket.socket) -> None:
        _tune(client)
        upstream: socket.socket | None = None
        try:
            if self.tls_in is not None:
                client = self.tls_in.wrap_socket(client, server_side=True)
                _check_peer(client, self.pin_in)
            upstream = socket.create_connection(listener.target, timeout=CONNECT_TIMEOUT)
            upstream.settimeout(None)
            _tune(upstream)
            if self.tls_out is not None:
                upstream = self.tls_out.wrap_socket(upstream, server_side=False)
                _check_peer(upstream, self.pin_out)
        except (OSError, ssl.SSLError) as e:
            print(f"session connection via {listener.port} refused: {e}", file=sys.stderr)
            client.close()
            if upstream is not None:
                upstream.close()
            return
        if isinstance(client, ssl.SSLSocket) or isinstance(upstream, ssl.SSLSocket):
            # OpenSSL's connection objects must not be read and written from two threads at
            # once: a TLS connection is moved both ways by one thread.
            threading.Thread(
                target=_relay_tls, args=(client, upstream, listener), daemon=True
            ).start()
            return

        def close_both() -> None:
            client.close()
            upstream.close()

        done = threading.Barrier(2, action=close_both)
        for src, dst, inbound in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(
                target=_pump, args=(src, dst, listener, inbound, done), daemon=True
            ).start()


def _der(leg: dict[str, str]) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leg["peer_cert"])


def _pump(
    src: socket.socket,
    dst: socket.socket,
    listener: Listener,
    inbound: bool,
    done: threading.Barrier,
) -> None:
    """Move one direction until its end of file, then pass the half-close on."""
    try:
        _splice(src, dst, listener, inbound)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            # An SSLSocket's shutdown would send close_notify and unwrap; the TCP half-close
            # of the raw descriptor is what the other side waits for.
            socket.socket.shutdown(dst, socket.SHUT_WR)
        with contextlib.suppress(threading.BrokenBarrierError):
            done.wait()


def _splice(src: socket.socket, dst: socket.socket, listener: Listener, inbound: bool) -> None:
    r, w = os.pipe()
    try:
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
        s, d = src.fileno(), dst.fileno()
        while True:
            try:
                n = os.splice(s, w, CHUNK, flags=os.SPLICE_F_MOVE)
            except OSError as e:
                if e.errno in (22, 38):  # EINVAL/ENOSYS: this kernel cannot splice these
                    _copy(src, dst, listener, inbound)
                    return
                raise
            if n == 0:
                return
            left = n
            while left:
                left -= os.splice(r, d, left, flags=os.SPLICE_F_MOVE)
            listener.add(inbound, n)
    finally:
        os.close(r)
        os.close(w)


def _copy(src: socket.socket, dst: socket.socket, listener: Listener, inbound: bool) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = src.recv_into(buf)
        if n == 0:
            return
        dst.sendall(view[:n])
        listener.add(inbound, n)


def _relay_tls(client: socket.socket, upstream: socket.socket, listener: Listener) -> None:
    """Both directions of a connection with a TLS side, on one thread: non-blocking sockets,
    a select over what can move, a buffer per direction.

    A TLS read returns one record (16 KiB) at most, so each wake-up reads on until the
    socket has nothing more or the buffer is full, and writes on until the socket takes no
    more: one select per megabyte rather than per record (a select and a copy per record
    held the TLS leg to a fifth of the plain one)."""
    legs = [(client, upstream, True), (upstream, client, False)]
    bufs = [bytearray(CHUNK), bytearray(CHUNK)]
    views = [memoryview(b) for b in bufs]
    filled = [0, 0]  # bytes read into the direction's buffer
    sent = [0, 0]  # of which written out
    ended = [False, False]  # the source's end of file was read
    closed = [False, False]  # and passed on, once all before it was written
    for sock in (client, upstream):
        sock.setblocking(False)
    try:
        while not (closed[0] and closed[1]):
            readers = [src for k, (src, _, _) in enumerate(legs) if not ended[k] and not filled[k]]
            writers = [dst for k, (_, dst, _) in enumerate(legs) if sent[k] < filled[k]]
            # Bytes OpenSSL already decrypted are not visible to select.
            ready = [r for r in readers if isinstance(r, ssl.SSLSocket) and r.pending()]
            if ready:
                can_write: list[socket.socket] = []
            else:
                ready, can_write, _ = select.select(readers, writers, [])  # type: ignore[arg-type]
            for k, (src, dst, inbound) in enumerate(legs):
                if src in ready and not filled[k] and not ended[k]:
                    # After its end of file a TLS socket is not read again: a second read
                    # past a close_notify is an error that would cut the other direction.
                    filled[k], ended[k] = _read_some(src, views[k])
                    listener.add(inbound, filled[k])
                    if filled[k]:
                        can_write = [*can_write, dst]
                if dst in can_write and sent[k] < filled[k]:
                    sent[k] += _write_some(dst, views[k][sent[k] : filled[k]])
                    if sent[k] == filled[k]:
                        filled[k] = sent[k] = 0
                if ended[k] and not filled[k] and not closed[k]:
                    closed[k] = True
                    _half_close(dst)
    except OSError as e:
        print(f"connection via {listener.port} ended: {e!r}", file=sys.stderr)
    finally:
        client.close()
        upstream.close()


_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


def _read_some(src: socket.socket, view: memoryview) -> tuple[int, bool]:
    """Read into ``view`` until the socket has no more or it is full: the count, and
    whether the stream's end of file came."""
    got = 0
    while got < len(view):
        try:
            n = src.recv_into(view[got:])
        except _AGAIN:
            break
        if n == 0:
            return got, True
        got += n
    return got, False


def _write_some(dst: socket.socket, data: memoryview) -> int:
    done = 0
    while done < len(data):
        try:
            done += dst.send(data[done:])
        except _AGAIN:
            break
    return done


def _half_close(sock: socket.socket) -> None:
    """Pass an end of file on, keeping the other direction open: a TCP FIN alone, also on a
    TLS leg (a close_notify would end the TLS session both ways for OpenSSL and stunnel)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)


def _reply(obj: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass  # the parent is gone: keep forwarding until someone reaps us


def _received_fds(fd: int, count: int) -> list[int]:
    """The session's listening sockets, sent by the parent over the Unix socket ``fd``
    (SCM_RIGHTS) when this process was started ahead of its session, as a spare."""
    with socket.socket(fileno=fd) as sock:
        _, fds, _, _ = socket.recv_fds(sock, 1, count)
    if len(fds) != count:
        for got in fds:
            os.close(got)
        raise OSError(f"{len(fds)} listening sockets received, {count} expected")
    return fds


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    fds = [int(x) for x in os.environ.get("STRATO_FORWARDER_FDS", "").split(",") if x]
    spare = os.environ.get("STRATO_FORWARDER_FDSOCK")
    line = sys.stdin.readline()  # a spare waits here, imported, until a session needs it
    if not line:
        return  # the control server went away before giving this process a session
    try:
        config = json.loads(line)
        if spare:
            fds = _received_fds(int(spare), len(config["listeners"]))
        fwd = Forwarder(config, fds)
        fwd.start()
    except (ValueError, KeyError, OSError, ssl.SSLError) as e:
        _reply({"error": f"{type(e).__name__}: {e}"})
        sys.exit(2)
    _reply({"ready": True})
    for line in sys.stdin:
        try:
            cmd = json.loads(line)
            if cmd.get("op") == "counters":
                _reply({"counters": fwd.counters()})
            elif cmd.get("op") == "update":
                fwd.update(cmd["targets"])
                _reply({"ok": True})
            else:
                _reply({"error": f"unknown op {cmd.get('op')!r}"})
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as e:
            _reply({"error": f"{type(e).__name__}: {e}"})
    # stdin closed: the control server is gone. Forwarding goes on until it is reaped, so a
    # restart of the control server does not cut streams it will decide about.
    threading.Event().wait()


if __name__ == "__main__":
    main()
