"""The ``slurm`` backend: each attempt is one batch job (``sbatch``), followed by a monitor.

One monitor per backend asks Slurm about every job it follows in one ``squeue`` call every
``slurm_poll`` seconds, so a thousand running tasks cost one call a poll, not a thousand.
A job that ``squeue`` shows ended (or no longer shows) is looked up in the accounting
(``sacct``, one call for all of them), then, for a record the accounting has not written yet,
in the controller (``scontrol show job``). Every command runs as an asyncio subprocess: the
event loop never waits on Slurm.

The controller may be away for a while (restarted, overloaded). A failing ``squeue`` says
nothing about the jobs, which keep running on their nodes: the monitor polls again with a
growing delay and never ends a job because a command failed. A job is given up as lost only
when ``squeue``, the accounting and the controller all answer and none knows it, for
``lost_after`` seconds.

The runner owns retries, so jobs are submitted with ``--no-requeue``: a node failure ends the
attempt (reason "node failure") instead of Slurm starting it again unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from strato.pipelines.backends.base import BackendError, Ended, Launch
from strato.pipelines.settings import PipelinesSettings

log = logging.getLogger(__name__)

# Slurm's job states that end a job, and what the runner is told besides the exit code.
# Every other state (PENDING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, ...) is still going.
_ENDINGS = {
    "COMPLETED": "",
    "FAILED": "",
    "CANCELLED": "cancelled",
    "TIMEOUT": "walltime",
    "DEADLINE": "walltime",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failure",
    "OUT_OF_MEMORY": "out of memory",
    "PREEMPTED": "preempted",
    "REVOKED": "revoked",
}

# How many job ids go into one command line (an argument stays well under the system's limit).
_CHUNK = 500


class _Unavailable(Exception):
    """A Slurm command could not answer (controller or accounting away): nothing is known."""


@dataclass
class _Job:
    future: asyncio.Future[Ended]
    missing_since: float | None = None  # when all of Slurm first said it knows no such job


@dataclass
class _Lookup:
    endings: dict[str, Ended] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)  # jobs Slurm has, ended or not
    unknown: set[str] = field(default_factory=set)  # the controller and accounting both deny


@dataclass
class _Result:
    code: int
    out: str
    err: str = ""

    def problem(self) -> str:
        lines = [line for line in (self.err or self.out).splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.code}"


@dataclass
class SlurmBackend:
    """Runs attempts as Slurm batch jobs on the cluster the environment's ``SLURM_CONF`` (or
    ``/etc/slurm/slurm.conf``) names."""

    settings: PipelinesSettings
    command_timeout: float = 60.0  # sbatch itself retries a busy controller for a while
    max_backoff: float = 30.0  # longest pause between polls while Slurm does not answer
    lost_after: float = 120.0
    name: str = field(default="slurm", init=False)

    def __post_init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # set when there is a job to follow
        self._nudge = asyncio.Event()  # a reason to poll before the next beat (a cancel)
        self._jobcomp: bool | None = None  # accounting only in the jobcomp file (sacct -c)
        self._closed = False

    # --- the protocol ------------------------------------------------------------------

    async def start(self, launch: Launch) -> str:
        script, stdin_file = _batch_script(launch)
        args = ["sbatch", "--parsable", *self._sbatch_options(launch)]
        env = {**os.environ, **launch.env}
        await asyncio.to_thread(_prepare_files, launch, stdin_file)
        try:
            result = await self._run(args, stdin=script.encode(), env=env)
        except _Unavailable as exc:
            raise BackendError(f"sbatch: {exc}") from None
        if result.code != 0:
            raise BackendError(f"sbatch refused {launch.task}: {result.problem()}")
        # --parsable prints "jobid" or "jobid;cluster".
        job_id = result.out.strip().split(";")[0]
        if not job_id.isdigit():
            raise BackendError(f"sbatch answered no job id: {result.out.strip()[:200]!r}")
        self._follow(job_id)
        return job_id

    async def wait(self, backend_id: str) -> Ended:
        job = self._follow(_checked_id(backend_id))
        # Shielded: one waiter given up (its run cancelled) leaves the others theirs.
        return await asyncio.shield(job.future)

    async def cancel(self, backend_id: str) -> None:
        job_id = _checked_id(backend_id)
        try:
            result = await self._run(["scancel", job_id])
        except _Unavailable as exc:
            raise BackendError(f"scancel {job_id}: {exc}") from None
        # A job that already ended, or one Slurm forgot, is stopped as far as we can tell.
        if result.code != 0 and not _gone(result.err):
            raise BackendError(f"scancel {job_id}: {result.problem()}")
        if job_id in self._jobs:
            self._nudge.set()

    async def adopt(self, backend_id: str) -> bool:
        job_id = _checked_id(backend_id)
        problem = ""
        try:
            if job_id in await self._squeue([job_id]):
                self._follow(job_id)
                return True
        except _Unavailable as exc:
            problem = str(exc)  # the accounting may know it still
        found = await self._look_up([job_id])
        if job_id in found.known:
            self._follow(job_id)
            return True
        if job_id in found.unknown:
            return False
        # Neither yes nor no: a "no" would have the task started a second time.
        why = problem or "the controller or the accounting did not answer"
        raise BackendError(f"cannot tell whether Slurm job {job_id} exists: {why}")

    async def close(self) -> None:
        """Stops following jobs; the jobs themselves go on, for ``adopt`` after a restart."""
        self._closed = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        for job in self._jobs.values():
            job.future.cancel()
        self._jobs.clear()

    # --- submitting --------------------------------------------------------------------

    def _sbatch_options(self, launch: Launch) -> list[str]:
        options = [
            f"--job-name={launch.run_id}/{launch.task}/{launch.attempt}",
            f"--chdir={launch.cwd}",
            f"--output={_slurm_filename(launch.log)}",
            "--open-mode=truncate",  # as the local backend: the attempt's own log
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={launch.cpus}",
            "--no-requeue",
            "--export=ALL",
        ]
        if launch.mem_mb > 0:  # --mem=0 would ask for all of a node's memory
            options.append(f"--mem={launch.mem_mb}M")
        if launch.walltime_s is not None:
            # Slurm counts time limits in whole minutes.
            options.append(f"--time={max(1, math.ceil(launch.walltime_s / 60))}")
        if self.settings.slurm_partition:
            options.append(f"--partition={self.settings.slurm_partition}")
        if self.settings.slurm_account:
            options.append(f"--account={self.settings.slurm_account}")
        return options

    # --- the monitor -------------------------------------------------------------------

    def _follow(self, job_id: str) -> _Job:
        if self._closed:
            raise BackendError("the slurm backend is closed")
        job = self._jobs.get(job_id)
        if job is None:
            job = self._jobs[job_id] = _Job(asyncio.get_running_loop().create_future())
            self._idle.set()
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._watch(), name="slurm-monitor")
        return job

    async def _watch(self) -> None:
        poll = self.settings.slurm_poll
        delay = poll
        while True:
            if not self._jobs:
                self._idle.clear()
                await self._idle.wait()
            # New jobs wait for the beat (a burst of submissions is one poll); a cancel is
            # looked at at once.
            self._nudge.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), delay)
            try:
                await self._poll_once()
            except _Unavailable as exc:
                delay = min(max(delay * 2, poll), max(self.max_backoff, poll))
                log.warning("slurm monitor: %s; asking again in %.1f s", exc, delay)
            except Exception:  # the monitor must outlive any surprise, or every wait hangs
                delay = min(max(delay * 2, poll), max(self.max_backoff, poll))
                log.exception("slurm monitor: unexpected failure; asking again in %.1f s", delay)
            else:
                delay = poll

    async def _poll_once(self) -> None:
        ids = list(self._jobs)
        if not ids:
            return
        states = await self._squeue(ids)
        over = [i for i in ids if i not in states or states[i] in _ENDINGS]
        found = await self._look_up(over) if over else _Lookup()
        now = time.monotonic()
        for job_id in ids:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            ended = found.endings.get(job_id)
            if ended is not None:
                self._settle(job_id, ended)
            elif job_id not in found.unknown:
                job.missing_since = None
            elif job.missing_since is None:
                job.missing_since = now
            elif now - job.missing_since >= self.lost_after:
                self._settle(
                    job_id,
                    Ended(None, "lost: Slurm no longer knows the job", backend_id=job_id),
                )

    def _settle(self, job_id: str, ended: Ended) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None and not job.future.done():
            job.future.set_result(ended)

    async def _squeue(self, ids: Sequence[str]) -> dict[str, str]:
        """The state of each job the controller still holds (ended ones for MinJobAge)."""
        states: dict[str, str] = {}
        for chunk in _chunks(ids):
            result = await self._run(
                ["squeue", "--noheader", "--states=all", f"--jobs={','.join(chunk)}", "-o", "%i|%T"]
            )
            if result.code != 0:
                # One id the controller forgot makes squeue fail; with several it says nothing.
                if _gone(result.err):
                    continue
                raise _Unavailable(f"squeue: {result.problem()}")
            for line in result.out.splitlines():
                job_id, _, state = line.strip().partition("|")
                if job_id:
                    states[job_id] = state.strip()
        return states

    async def _look_up(self, ids: Sequence[str]) -> _Lookup:
        """How the jobs ended, for those Slurm can tell already; which it says it never had."""
        found = _Lookup()
        accounted = True
        try:
            found.endings, found.known = await self._sacct(ids)
        except _Unavailable as exc:
            # The controller still holds recently ended jobs: asked below.
            accounted = False
            log.info("slurm monitor: no accounting (%s); asking the controller", exc)
        # A job the accounting lists as still going needs no second opinion.
        rest = [i for i in ids if i not in found.known]
        # Bounded: an accounting that is late for many jobs must not fork hundreds at once.
        gate = asyncio.Semaphore(8)

        async def ask(job_id: str) -> None:
            async with gate:
                answer = await self._scontrol(job_id)
            if isinstance(answer, Ended):
                found.endings[job_id] = answer
                found.known.add(job_id)
            elif answer == "known":
                found.known.add(job_id)
            elif answer == "unknown" and accounted and job_id not in found.known:
                # Only when the controller and the accounting both answered without it.
                found.unknown.add(job_id)

        await asyncio.gather(*(ask(i) for i in rest))
        return found

    async def _sacct(self, ids: Sequence[str]) -> tuple[dict[str, Ended], set[str]]:
        """The endings the accounting holds, and every job it lists (ended or not)."""
        endings: dict[str, Ended] = {}
        listed: set[str] = set()
        for chunk in _chunks(ids):
            fields = [
                "-X",
                "-n",
                "-P",
                f"--jobs={','.join(chunk)}",
                "-o",
                "JobIDRaw,State,ExitCode",
            ]
            result = await self._run(["sacct", *(["-c"] if self._jobcomp else []), *fields])
            text = result.out + result.err
            if self._jobcomp is None and "accounting storage is disabled" in text:
                # No slurmdbd: the records are in the job completion file.
                self._jobcomp = True
                result = await self._run(["sacct", "-c", *fields])
            if result.code != 0:
                raise _Unavailable(f"sacct: {result.problem()}")
            for line in result.out.splitlines():
                parts = line.strip().split("|")
                if len(parts) >= 3:
                    listed.add(parts[0])
                    ended = _ending(parts[0], parts[1], parts[2])
                    if ended is not None:
                        endings[parts[0]] = ended
        return endings, listed

    async def _scontrol(self, job_id: str) -> Ended | Literal["known", "unknown", "no answer"]:
        try:
            result = await self._run(["scontrol", "show", "job", "--oneliner", job_id])
        except _Unavailable:
            return "no answer"
        if result.code != 0:
            return "unknown" if _gone(result.err) else "no answer"
        fields: dict[str, str] = {}
        for item in result.out.split():
            key, _, value = item.partition("=")
            fields.setdefault(key, value)
        ended = _ending(job_id, fields.get("JobState", ""), fields.get("ExitCode", ""))
        return "known" if ended is None else ended

    async def _run(
        self,
        args: list[str],
        *,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
    ) -> _Result:
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise _Unavailable(f"cannot run {args[0]}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.command_timeout)
        except TimeoutError:
            raise _Unavailable(
                f"{args[0]} did not answer within {self.command_timeout:g} s"
            ) from None
        finally:
            if proc.returncode is None:  # timed out, or the caller was cancelled
                proc.kill()
                await asyncio.shield(proc.wait())
        assert proc.returncode is not None
        return _Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


# --- helpers ------------------------------------------------------------------------------


def _ending(job_id: str, state: str, exit_code: str) -> Ended | None:
    """An Ended from Slurm's state and ``code:signal``; None while the job is not over."""
    # sacct says "CANCELLED by 0"; scontrol may add a flag after a space.
    words = state.split()
    name = words[0] if words else ""
    if name not in _ENDINGS:
        return None
    reason = _ENDINGS[name]
    code_text, _, signal_text = exit_code.partition(":")
    code = int(code_text) if code_text.isdigit() else None
    signal = int(signal_text) if signal_text.isdigit() else 0
    if signal:
        code = None
        if not reason:
            reason = f"killed by signal {signal}"
    elif reason:
        # A code means something only for a job that ended by itself.
        code = code if name == "OUT_OF_MEMORY" else None
    return Ended(code, reason, backend_id=job_id)


def _batch_script(launch: Launch) -> tuple[str, Path | None]:
    """The batch script (the task's command under ``bash -c``) and the file it reads stdin from."""
    if "\0" in launch.cmd:
        raise BackendError(f"the command of {launch.task} holds a NUL byte")
    stdin_file = None
    source = "/dev/null"
    if launch.stdin is not None:
        stdin_file = launch.log.with_name(launch.log.name + ".stdin")
        source = str(stdin_file)
    script = (
        "#!/bin/bash\n"
        f"# strato pipeline run {launch.run_id}, task {launch.task}, attempt {launch.attempt}\n"
        f"exec bash -c {shlex.quote(launch.cmd)} < {shlex.quote(source)}\n"
    )
    return script, stdin_file


def _prepare_files(launch: Launch, stdin_file: Path | None) -> None:
    # slurmd creates the log but not its directory; a missing one fails the job unseen.
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    if stdin_file is not None and launch.stdin is not None:
        stdin_file.write_text(launch.stdin)


def _slurm_filename(path: Path) -> str:
    """``path`` as sbatch --output takes it: ``%`` starts a pattern (``%j``) unless doubled, and
    a path with a backslash is taken as it is."""
    text = str(path.absolute())
    return text if "\\" in text else text.replace("%", "%%")


def _checked_id(backend_id: str) -> str:
    job_id = backend_id.strip()
    if not job_id.isdigit():
        raise BackendError(f"not a Slurm job id: {backend_id!r}")
    return job_id


def _gone(stderr: str) -> bool:
    """Whether Slurm's complaint is that it knows no such (running) job."""
    text = stderr.lower()
    return "invalid job id" in text or "already completed" in text


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
