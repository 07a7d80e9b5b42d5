"""The builtin data server: strato's own forwarder, one supervised process per session
(:mod:`strato.stream.dataserver.forwarder`).

The listening sockets are bound here, in the control server, and handed to the process as
inherited descriptors: a port that cannot be bound is a DataServerError naming it, before
any process starts, and the forwarder needs no privilege of its own. The parent keeps no
copy once the process has them, so the ports are free as soon as the process ends.

Starting Python and importing the forwarder takes 50-100 ms, most of a stream's setup
time. With ``spares`` > 0 that many forwarders are started ahead (``warm``), waiting for a
session: ``open`` gives one its listening sockets over a Unix socket (SCM_RIGHTS) and its
configuration on stdin, and starts a replacement in the background. A spare whose
control server goes away reads the end of its stdin and exits: spares are never orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strato.stream.dataserver import supervise
from strato.stream.dataserver.base import (
    Address,
    Counters,
    DataServerError,
    Forwarding,
    TlsLeg,
)

logger = logging.getLogger(__name__)
NAME = "builtin"
# A reply to a command takes microseconds; one that takes longer means the process is stuck.
REPLY_TIMEOUT = 5.0


@dataclass
class _Session:
    proc: asyncio.subprocess.Process
    listeners: tuple[Address, ...]
    marker: Path
    log: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Spare:
    """A forwarder started ahead of its session: its mark, its log, and the parent's end of
    the Unix socket its listening sockets will come through."""

    proc: asyncio.subprocess.Process
    token: str
    log: Path
    fdsock: socket.socket


def _leg(leg: TlsLeg | None) -> dict[str, str] | None:
    if leg is None:
        return None
    return {
        "cert": leg.cert_pem.decode(),
        "key": leg.key_pem.decode(),
        "peer_cert": leg.peer_cert_pem.decode(),
    }


def _addresses(addresses: tuple[Address, ...]) -> list[dict[str, Any]]:
    return [{"host": a.host, "port": a.port} for a in addresses]


class BuiltinDataServer:
    name = NAME

    def __init__(self, state_dir: Path, python: str = sys.executable, spares: int = 0) -> None:
        self.state_dir = state_dir
        self.python = python
        self.spares = spares
        self._sessions: dict[str, _Session] = {}
        self._spares: list[_Spare] = []
        self._filling: asyncio.Task[None] | None = None
        self._closed = False
        self._held: int | None = None  # the state directory's lock, from reap on

    async def warm(self) -> None:
        """Start the spare forwarders now, so the first session finds one."""
        await self._fill()

    async def open(self, forwarding: Forwarding) -> None:
        if forwarding.session in self._sessions:
            raise DataServerError(f"session {forwarding.session} is already open")
        if not forwarding.targets:
            raise DataServerError("no targets to forward to")
        socks = []
        try:
            for address in forwarding.listeners:
                socks.append(supervise.bind_listener(address))
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            log = self.state_dir / f"{supervise.safe_name(forwarding.session)}.log"
            started = self._hand_to_spare(socks, log)
            proc, token = started or await self._spawn(socks, log)
        finally:
            for sock in socks:
                sock.close()  # the child holds them now (or nobody does)
        try:
            await self._configure(forwarding, proc, token, log)
        finally:
            self._refill()  # once this session's forwarder is set: it had the CPU first

    async def _configure(
        self, forwarding: Forwarding, proc: asyncio.subprocess.Process, token: str, log: Path
    ) -> None:
        marker = supervise.write_marker(self.state_dir, NAME, forwarding.session, proc.pid, token)
        session = _Session(proc, forwarding.listeners, marker, log)
        config = {
            "session": forwarding.session,
            "listeners": _addresses(forwarding.listeners),
            "targets": _addresses(forwarding.targets),
            "tls_in": _leg(forwarding.tls_in),
            "tls_out": _leg(forwarding.tls_out),
        }
        try:
            reply = await self._ask(session, config)
        except DataServerError:
            await self._stop(forwarding.session, session)
            raise
        if "error" in reply:
            await self._stop(forwarding.session, session)
            raise DataServerError(f"forwarder did not start: {reply['error']}")
        if self._closed:  # set up while the control server stopped: no orphan left
            await self._stop(forwarding.session, session)
            raise DataServerError("the data server is stopping")
        self._sessions[forwarding.session] = session

    async def _spawn(
        self, socks: list[socket.socket], log: Path, fdsock: socket.socket | None = None
    ) -> tuple[asyncio.subprocess.Process, str]:
        """A forwarder process: given the listening sockets now, or (a spare) the child's
        end of the Unix socket they will come through."""
        token = supervise.new_mark()
        env = supervise.marked_env(NAME, token)
        fds = [s.fileno() for s in socks]
        if fdsock is not None:
            env["STRATO_FORWARDER_FDSOCK"] = str(fdsock.fileno())
            fds = [fdsock.fileno()]
        else:
            env["STRATO_FORWARDER_FDS"] = ",".join(str(fd) for fd in fds)
        with open(log, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "strato.stream.dataserver.forwarder",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=env,
                pass_fds=fds,
                start_new_session=True,  # a signal to the control server is not its
            )
        return proc, token

    def _hand_to_spare(
        self, socks: list[socket.socket], log: Path
    ) -> tuple[asyncio.subprocess.Process, str] | None:
        """Give the listening sockets to a running spare; None when there is none (or the
        one there died meanwhile)."""
        while self._spares:
            spare = self._spares.pop(0)
            if spare.proc.returncode is None and _running(spare.proc.pid):
                try:
                    socket.send_fds(spare.fdsock, [b"L"], [s.fileno() for s in socks])
                except OSError:  # it died just now
                    self._discard(spare)
                    continue
                spare.fdsock.close()
                with contextlib.suppress(OSError):  # its log is a nicety, not the session
                    spare.log.replace(log)
                return spare.proc, spare.token
            self._discard(spare)
        return None

    def _refill(self) -> None:
        if len(self._spares) < self.spares and (self._filling is None or self._filling.done()):
            self._filling = asyncio.create_task(self._fill())

    async def _fill(self) -> None:
        while len(self._spares) < self.spares:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            log = self.state_dir / f"spare-{supervise.new_mark()}.log"
            try:
                proc, token = await self._spawn([], log, child)
            except OSError as e:  # sessions start without a spare, only slower
                parent.close()
                log.unlink(missing_ok=True)
                logger.warning("a spare forwarder could not start: %s", e)
                return
            finally:
                child.close()
            self._spares.append(_Spare(proc, token, log, parent))

    def _discard(self, spare: _Spare) -> None:
        spare.fdsock.close()
        if spare.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                spare.proc.kill()
        if spare.proc.stdin is not None:
            spare.proc.stdin.close()
        spare.log.unlink(missing_ok=True)

    async def _ask(self, session: _Session, command: dict[str, Any]) -> dict[str, Any]:
        proc = session.proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        async with session.lock:
            try:
                proc.stdin.write(json.dumps(command).encode() + b"\n")
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), REPLY_TIMEOUT)
            # uvloop's pipe transport says a closed pipe with RuntimeError, asyncio's
            # with an OSError: either way the forwarder is gone.
            except (OSError, TimeoutError, RuntimeError) as e:
                raise DataServerError(f"forwarder (pid {proc.pid}) does not answer: {e}") from e
        if not line:
            raise DataServerError(
                f"forwarder (pid {proc.pid}) has exited (status {proc.returncode})"
            )
        try:
            reply = json.loads(line)
        except ValueError as e:
            raise DataServerError(f"forwarder (pid {proc.pid}) answered nonsense: {e}") from e
        if not isinstance(reply, dict):
            raise DataServerError(f"forwarder (pid {proc.pid}) answered nonsense")
        return reply

    def _get(self, session: str) -> _Session:
        try:
            return self._sessions[session]
        except KeyError:
            raise DataServerError(f"no open session {session}") from None

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        if not targets:
            raise DataServerError("no targets to forward to")
        reply = await self._ask(
            self._get(session), {"op": "update", "targets": _addresses(targets)}
        )
        if "error" in reply:
            raise DataServerError(f"update refused: {reply['error']}")

    async def counters(self, session: str) -> list[Counters]:
        s = self._get(session)
        reply = await self._ask(s, {"op": "counters"})
        return [
            Counters(
                Address(c["host"], int(c["port"])),
                int(c["connections"]),
                int(c["bytes_in"]),
                int(c["bytes_out"]),
            )
            for c in reply.get("counters", [])
        ]

    async def alive(self, session: str) -> bool:
        s = self._sessions.get(session)
        return s is not None and s.proc.returncode is None and _running(s.proc.pid)

    async def close(self, session: str) -> None:
        s = self._sessions.pop(session, None)
        if s is not None:
            await self._stop(session, s)

    async def _stop(self, session: str, s: _Session) -> None:
        await supervise.stop_process(s.proc)
        if s.proc.stdout is not None:
            s.proc.stdout.feed_eof()
        s.marker.unlink(missing_ok=True)
        s.log.unlink(missing_ok=True)

    async def close_all(self) -> None:
        # A session still being set up (a req in flight as the control server stops)
        # is stopped when its forwarder answers, not left running without an owner.
        self._closed = True
        self.spares = 0  # no more replacements
        if self._filling is not None:
            await self._filling  # a spawn under way finishes, then is stopped with the rest
        for spare in self._spares:
            self._discard(spare)
            await spare.proc.wait()
        self._spares.clear()
        for session in list(self._sessions):
            await self.close(session)
        supervise.let_go(self._held)
        self._held = None

    async def reap(self) -> list[str]:
        if self._held is None:
            self._held = supervise.hold(self.state_dir)
        # Spares of a previous control server have exited (their stdin ended with it).
        for stale in self.state_dir.glob("spare-*.log"):
            stale.unlink(missing_ok=True)
        return await supervise.reap_markers(self.state_dir, NAME)

    def spare_pids(self) -> list[int]:
        """The spare forwarders' process ids (for tests and status pages)."""
        return [s.proc.pid for s in self._spares]

    def pid(self, session: str) -> int | None:
        """The session's process id (for tests and status pages)."""
        s = self._sessions.get(session)
        return s.proc.pid if s else None


def _running(pid: int) -> bool:
    # A killed child is a zombie until asyncio reaps it; returncode may lag a moment.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    return False
