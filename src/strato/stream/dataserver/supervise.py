"""What every process-backed data server shares: the marker a session's process carries so
a later control server can find it (``reap``), stopping a process and waiting until its
ports are free, and waiting until a process listens on its ports.

The marker: each process is started with ``STRATO_STREAM_MARK=<token>`` in its
environment (a CSPRNG token), and a file ``<state_dir>/<session>.json`` records its pid
and token. Reap stops a pid only when ``/proc/<pid>/environ`` carries that token, so a pid
the kernel has since given to another process is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import socket
from pathlib import Path

from strato.stream.dataserver.base import Address, DataServerError

MARK = "STRATO_STREAM_MARK"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(session: str) -> str:
    """A session id as a file name (ids come from clients: nothing may climb out)."""
    return _SAFE.sub("_", session)[:120] or "_"


def hold(state_dir: Path) -> int:
    """An exclusive lock on ``state_dir`` for this control server's life (a file beside
    it), taken before its reap: a second control server on the same state directory would
    stop the first's forwarders and take their spares' files. Refused, saying so, while
    another holds it; the kernel lets go when the holder dies, however it dies."""
    state_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir.with_name(state_dir.name + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataServerError(
            f"{state_dir} is used by another control server: give each gateway on this "
            "machine its own stream.state_dir (or data directory)"
        ) from None
    return fd


def let_go(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def new_mark() -> str:
    return secrets.token_hex(16)


def marked_env(backend: str, token: str) -> dict[str, str]:
    env = dict(os.environ)
    env[MARK] = f"{backend}:{token}"
    return env


def write_marker(state_dir: Path, backend: str, session: str, pid: int, token: str) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / f"{safe_name(session)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"backend": backend, "session": session, "pid": pid, "token": token}))
    tmp.replace(path)
    return path


def _carries(pid: int, mark: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARK}={mark}".encode() in environ.split(b"\0")


async def reap_markers(state_dir: Path, backend: str) -> list[str]:
    """Stop every process a previous control server left for this backend; return their
    sessions. Marker files whose process is gone are removed too."""
    sessions: list[str] = []
    if not state_dir.is_dir():
        return sessions
    for path in sorted(state_dir.glob("*.json")):
        try:
            marker = json.loads(path.read_text())
            if marker.get("backend") != backend:
                continue
            pid, mark = int(marker["pid"]), f"{backend}:{marker['token']}"
            session = str(marker["session"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _carries(pid, mark):
            await stop_pid(pid)
            sessions.append(session)
        path.unlink(missing_ok=True)
        for extra in state_dir.glob(f"{path.stem}.*"):
            extra.unlink(missing_ok=True)
    return sessions


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (``Z`` for a zombie), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def running(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


async def stop_pid(pid: int, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while running(pid):
        if loop.time() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = loop.time() + grace
        await asyncio.sleep(0.02)


async def stop_process(proc: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    for stream in (proc.stdin,):
        if stream is not None:
            stream.close()


async def wait_free(addresses: tuple[Address, ...], timeout: float = 3.0) -> None:
    """Until every port can be bound again. haproxy's listening sockets can outlive its exit
    by a few milliseconds; close promises the ports are free when it returns."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for address in addresses:
        while True:
            try:
                bind_listener(address).close()
                break
            except DataServerError:
                if loop.time() > deadline:
                    return
                await asyncio.sleep(0.01)


def check_bindable(addresses: tuple[Address, ...]) -> None:
    """Bind each port for an instant, so a busy one is named before a proxy is started
    (haproxy and stunnel would only say so in their logs)."""
    for address in addresses:
        bind_listener(address).close()


def bind_listener(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DataServerError(f"cannot listen on {address}: {e.strerror or e}") from e
    return sock


async def wait_listening(
    proc: asyncio.subprocess.Process, addresses: tuple[Address, ...], timeout: float = 10.0
) -> None:
    """Until the process listens on every port (read from its own sockets, not by
    connecting, which would forward an empty connection to a target)."""
    wanted = {a.port for a in addresses}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if proc.returncode is not None:
            raise DataServerError(f"exited with status {proc.returncode} before listening")
        listening = _listening_ports(proc.pid)
        if wanted <= listening:
            return
        if loop.time() > deadline:
            missing = ", ".join(str(p) for p in sorted(wanted - listening))
            raise DataServerError(f"not listening on port(s) {missing} after {timeout:.0f} s")
        await asyncio.sleep(0.02)


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports a process listens on: its socket inodes matched against the kernel's
    tables of its network namespace."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
