"""What the haproxy and stunnel data servers share: a session is one process of the real
binary, started in the foreground with a configuration rendered for the session into the
state directory, supervised, and stopped (its files removed, its ports free) on close."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from strato.stream.dataserver import supervise
from strato.stream.dataserver.base import Address, Counters, DataServerError, Forwarding


@dataclass
class ProxySession:
    forwarding: Forwarding
    proc: asyncio.subprocess.Process
    files: Path  # the prefix of the session's files: <state_dir>/<session>
    marker: Path

    def path(self, suffix: str) -> Path:
        return self.files.with_name(self.files.name + suffix)


class ProxiedDataServer:
    name = "proxied"

    def __init__(self, state_dir: Path, binary: str) -> None:
        self.state_dir = state_dir
        self.binary = binary
        self._sessions: dict[str, ProxySession] = {}
        self._closed = False
        self._held: int | None = None  # the state directory's lock, from reap on

    # What each backend says for itself.
    def check(self, forwarding: Forwarding) -> None: ...

    def render(self, forwarding: Forwarding, files: Path) -> str:
        raise NotImplementedError

    def argv(self, config: Path) -> list[str]:
        raise NotImplementedError

    async def read_counters(self, s: ProxySession) -> list[Counters]:
        raise NotImplementedError

    async def update(self, session: str, targets: tuple[Address, ...]) -> None:
        raise NotImplementedError

    async def open(self, forwarding: Forwarding) -> None:
        if forwarding.session in self._sessions:
            raise DataServerError(f"session {forwarding.session} is already open")
        if not forwarding.targets:
            raise DataServerError("no targets to forward to")
        self.check(forwarding)
        supervise.check_bindable(forwarding.listeners)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = self.state_dir / supervise.safe_name(forwarding.session)
        config = files.with_name(files.name + ".conf")
        config.write_text(self.render(forwarding, files))
        token = supervise.new_mark()
        log = files.with_name(files.name + ".out")
        try:
            with open(log, "ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    *self.argv(config),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    env=supervise.marked_env(self.name, token),
                    start_new_session=True,
                )
        except OSError as e:
            self._remove(files)
            raise DataServerError(f"{self.binary} could not be started: {e}") from e
        marker = supervise.write_marker(
            self.state_dir, self.name, forwarding.session, proc.pid, token
        )
        session = ProxySession(forwarding, proc, files, marker)
        try:
            await supervise.wait_listening(proc, forwarding.listeners)
        except DataServerError as e:
            said = log.read_text(errors="replace").strip().splitlines()[-3:]
            await self._stop(session)
            raise DataServerError(f"{self.name}: {e}: {' | '.join(said)}") from None
        if self._closed:  # set up while the control server stopped: no orphan left
            await self._stop(session)
            raise DataServerError("the data server is stopping")
        self._sessions[forwarding.session] = session

    def _get(self, session: str) -> ProxySession:
        try:
            return self._sessions[session]
        except KeyError:
            raise DataServerError(f"no open session {session}") from None

    async def counters(self, session: str) -> list[Counters]:
        return await self.read_counters(self._get(session))

    async def alive(self, session: str) -> bool:
        s = self._sessions.get(session)
        if s is None or s.proc.returncode is not None:
            return False
        try:
            with open(f"/proc/{s.proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    async def close(self, session: str) -> None:
        s = self._sessions.pop(session, None)
        if s is not None:
            await self._stop(s)

    async def _stop(self, s: ProxySession) -> None:
        await supervise.stop_process(s.proc)
        await supervise.wait_free(s.forwarding.listeners)
        s.marker.unlink(missing_ok=True)
        self._remove(s.files)

    def _remove(self, files: Path) -> None:
        for path in self.state_dir.glob(f"{files.name}.*"):
            with contextlib.suppress(OSError):
                path.unlink()

    async def close_all(self) -> None:
        self._closed = True  # a session still being set up is stopped when it is
        for session in list(self._sessions):
            await self.close(session)
        supervise.let_go(self._held)
        self._held = None

    async def reap(self) -> list[str]:
        if self._held is None:
            self._held = supervise.hold(self.state_dir)
        return await supervise.reap_markers(self.state_dir, self.name)

    def pid(self, session: str) -> int | None:
        s = self._sessions.get(session)
        return s.proc.pid if s else None


def hostport(a: Address) -> str:
    return f"[{a.host}]:{a.port}" if ":" in a.host else f"{a.host}:{a.port}"
