"""The local backend: each attempt a ``bash -c cmd`` subprocess of the server, in a
process group of its own so that cancelling it or running out of walltime stops
everything it started, not only bash.

An attempt's id is ``<pid>:<token>``; the token is also in the process's environment
(``STRATO_PIPELINE_ATTEMPT``), so a later server can tell a process it left behind from
another that reuses its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

from strato.pipelines.backends.base import BackendError, Ended, Launch

MARKER = "STRATO_PIPELINE_ATTEMPT"


@dataclass
class _Attempt:
    process: asyncio.subprocess.Process
    feeding: asyncio.Task[None] | None = None
    reason: str = ""  # why the backend stopped it: "cancelled", "walltime"
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class LocalBackend:
    name = "local"

    def __init__(self, *, kill_grace: float = 5.0) -> None:
        # Between SIGTERM to a stopped attempt's group and SIGKILL.
        self.kill_grace = kill_grace
        self._attempts: dict[str, _Attempt] = {}

    async def start(self, launch: Launch) -> str:
        token = secrets.token_hex(8)
        env = {**os.environ, **launch.env, MARKER: token}
        try:
            launch.log.parent.mkdir(parents=True, exist_ok=True)
            # The child gets its own descriptor; ours is closed once it is started.
            with launch.log.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    "bash",
                    "-c",
                    launch.cmd,
                    cwd=launch.cwd,
                    env=env,
                    stdin=asyncio.subprocess.PIPE
                    if launch.stdin is not None
                    else asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise BackendError(f"task {launch.task!r} could not be started: {exc}") from exc
        backend_id = f"{process.pid}:{token}"
        attempt = _Attempt(process)
        if launch.stdin is not None:
            attempt.feeding = asyncio.create_task(_feed(process, launch.stdin.encode()))
        if launch.walltime_s is not None:
            loop = asyncio.get_running_loop()
            attempt.timers.append(
                loop.call_later(launch.walltime_s, self._stop, backend_id, "walltime")
            )
        self._attempts[backend_id] = attempt
        return backend_id

    async def wait(self, backend_id: str) -> Ended:
        attempt = self._attempts.get(backend_id)
        if attempt is None:
            return Ended(None, "unknown to this server", backend_id)
        try:
            code = await attempt.process.wait()
            if attempt.feeding is not None:
                await attempt.feeding
        finally:
            for timer in attempt.timers:
                timer.cancel()
            self._attempts.pop(backend_id, None)
        if attempt.reason:
            return Ended(code if code >= 0 else None, attempt.reason, backend_id)
        if code < 0:
            return Ended(None, f"killed by signal {-code}", backend_id)
        return Ended(code, "", backend_id)

    async def cancel(self, backend_id: str) -> None:
        self._stop(backend_id, "cancelled")

    def _stop(self, backend_id: str, reason: str) -> None:
        attempt = self._attempts.get(backend_id)
        if attempt is None or attempt.process.returncode is not None:
            return
        attempt.reason = attempt.reason or reason
        pgid = attempt.process.pid
        _signal_group(pgid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        # A task that ignores SIGTERM is killed.
        attempt.timers.append(loop.call_later(self.kill_grace, _signal_group, pgid, signal.SIGKILL))

    async def adopt(self, backend_id: str) -> bool:
        """Only this server's own attempts: a process a previous server started is no
        child of this one, so its exit code cannot be had. One still running is stopped
        (it would otherwise run beside its rerun) and the task runs again."""
        if backend_id in self._attempts:
            return True
        pid, _, token = backend_id.partition(":")
        if pid.isdigit() and token and _has_marker(int(pid), token):
            _signal_group(int(pid), signal.SIGKILL)
        return False

    async def close(self) -> None:
        """Stops every attempt still running: none could be followed after a restart."""
        for attempt in list(self._attempts.values()):
            if attempt.process.returncode is None:
                _signal_group(attempt.process.pid, signal.SIGKILL)
        for backend_id in list(self._attempts):
            attempt = self._attempts[backend_id]
            with contextlib.suppress(ProcessLookupError):
                await attempt.process.wait()
            for timer in attempt.timers:
                timer.cancel()
        self._attempts.clear()


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    stdin = process.stdin
    if stdin is None:
        return
    # A command that does not read all its input closes the pipe: not an error.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.close()
        await stdin.wait_closed()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _has_marker(pid: int, token: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}={token}".encode() in environ.split(b"\0")
