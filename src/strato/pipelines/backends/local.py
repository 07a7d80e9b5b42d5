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
import itertools
import os
import secrets
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from strato.pipelines.backends.base import BackendError, Ended, Launch

MARKER = "STRATO_PIPELINE_ATTEMPT"
STARTERS = 2  # threads starting processes


@dataclass
class _Attempt:
    process: subprocess.Popen[bytes]
    exited: asyncio.Future[int]  # the exit code, or minus the signal that killed it
    reason: str = ""  # why the backend stopped it: "cancelled", "walltime"
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class LocalBackend:
    name = "local"

    def __init__(self, *, kill_grace: float = 5.0) -> None:
        # Between SIGTERM to a stopped attempt's group and SIGKILL.
        self.kill_grace = kill_grace
        self._attempts: dict[str, _Attempt] = {}
        self._starter: ThreadPoolExecutor | None = None
        # Tokens only need to be unique (a process of this server's, not another's that
        # reuses its pid): a random part per server and a count, not a read of the
        # system's random source per attempt on the event loop.
        prefix = secrets.token_hex(6)
        self._tokens = (f"{prefix}{n:x}" for n in itertools.count())

    async def start(self, launch: Launch) -> str:
        token = next(self._tokens)
        if self._starter is None:
            self._starter = ThreadPoolExecutor(STARTERS, thread_name_prefix="pipeline-start")
        # In threads: the log's creation and the fork were two thirds of the event loop's
        # time per no-op task, and two threads fork at once where the loop forks in turn.
        starting = asyncio.get_running_loop().run_in_executor(self._starter, _spawn, launch, token)
        try:
            process, pidfd = await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(_stop_unfollowed)
            raise
        except OSError as exc:
            raise BackendError(f"task {launch.task!r} could not be started: {exc}") from exc
        backend_id = f"{process.pid}:{token}"
        attempt = _Attempt(process, _exited(process, pidfd))
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
            code = await asyncio.shield(attempt.exited)
        finally:
            if attempt.exited.done():
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
        if attempt is None or attempt.exited.done():
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
            if not attempt.exited.done():
                _signal_group(attempt.process.pid, signal.SIGKILL)
        for backend_id in list(self._attempts):
            attempt = self._attempts[backend_id]
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(attempt.exited)
            for timer in attempt.timers:
                timer.cancel()
        self._attempts.clear()
        if self._starter is not None:
            self._starter.shutdown(wait=False)
            self._starter = None


def _spawn(launch: Launch, token: str) -> tuple[subprocess.Popen[bytes], int | None]:
    """``bash -c cmd`` started, its output into its log, and a pidfd to learn of its exit
    (None without pidfds), on a starter thread: system calls on the event loop's thread
    let the starters take the GIL from it."""
    # The environment as bytes: subprocess encodes a text one value by value.
    env = dict(os.environb)
    for key, value in {**launch.env, MARKER: token}.items():
        env[os.fsencode(key)] = os.fsencode(value)
    # The child gets its own descriptors; ours are closed once it is started.
    with contextlib.ExitStack() as stack:
        log = _open_log(launch.log)
        stack.callback(os.close, log)
        stdin: int | IO[bytes] = subprocess.DEVNULL
        if launch.stdin is not None:
            # From a file rather than a pipe fed by the server: the input is there
            # whenever the command reads it, and no task of the server writes it.
            stdin = stack.enter_context(tempfile.TemporaryFile())
            stdin.write(launch.stdin.encode())
            stdin.flush()
            stdin.seek(0)
        process = subprocess.Popen(
            ["bash", "-c", launch.cmd],
            cwd=launch.cwd,
            env=env,
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        pidfd: int | None = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        pidfd = None
    return process, pidfd


def _stop_unfollowed(starting: asyncio.Future[tuple[subprocess.Popen[bytes], int | None]]) -> None:
    """A process whose start was cancelled while it was being started: stopped, reaped."""
    if starting.cancelled() or starting.exception() is not None:
        return
    process, pidfd = starting.result()
    _signal_group(process.pid, signal.SIGKILL)
    _exited(process, pidfd)


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:  # the first attempt's log in its directory
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def _exited(process: subprocess.Popen[bytes], pidfd: int | None) -> asyncio.Future[int]:
    """A future of the process's exit, told by its pidfd on the event loop: no thread per
    process (asyncio's child watcher on Python 3.11 starts one for each, and starting
    it cost as much as the fork). Without pidfds (Linux before 5.3), a thread waits."""
    loop = asyncio.get_running_loop()
    if pidfd is None:
        return asyncio.ensure_future(asyncio.to_thread(process.wait))
    exited: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        code = process.poll()
        if code is None:  # woken early: not ended yet
            return
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, reap)
    return exited


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _has_marker(pid: int, token: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}={token}".encode() in environ.split(b"\0")
