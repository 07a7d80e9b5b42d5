"""One run driven to its end: ready tasks started on the backend as their parents
complete and their resources free up, retries with backoff, a failed task's descendants
skipped, every state change saved, then the post-run steps (archive, notify) as part of
the run's state machine. A run is driven the same way after a restart or a resume: what
is complete stays complete, a task whose attempt the backend still knows is followed,
the others run again, and post-run steps not yet done are done.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from strato.db import utcnow
from strato.pipelines import poststeps
from strato.pipelines.backends.base import Backend, BackendError, Ended, Launch
from strato.pipelines.records import RunRecord, RunState, TaskRecord, TaskState, workflow_of
from strato.pipelines.resources import Resources
from strato.pipelines.writer import Writer
from strato.retry import Backoff

log = logging.getLogger(__name__)

TAIL_BYTES = 2000


@dataclass(frozen=True)
class Parts:
    """What every run's driver shares: the server's backend, resources and settings."""

    writer: Writer
    backend: Backend
    resources: Resources | None  # None: the backend accounts for them (Slurm)
    backoff: Backoff
    archive_to: str | None = None
    smtp_url: str | None = None
    mail_from: str = "strato@localhost"


class RunDriver:
    def __init__(self, parts: Parts, run: RunRecord, tasks: list[TaskRecord]) -> None:
        self.parts = parts
        self.run = run
        self.tasks = {t.name: t for t in sorted(tasks, key=lambda t: t.position)}
        self.workflow = workflow_of(tasks)
        self._children: dict[str, list[str]] = {name: [] for name in self.tasks}
        for name, parents in self.workflow.parents.items():
            for parent in parents:
                self._children[parent].append(name)
        # Readiness kept as it changes, not looked for: each task's count of parents not
        # yet complete, and the pending tasks whose count is 0 in a queue. A task ending
        # costs its children, not a pass over every task (1,000 independent tasks took
        # a million checks).
        self._unmet = {
            name: sum(self.tasks[p].state != TaskState.complete for p in task.parents)
            for name, task in self.tasks.items()
        }
        self._ready: collections.deque[str] = collections.deque(
            name for name, task in self.tasks.items() if self._is_ready(name, task.state)
        )
        self._running: dict[str, asyncio.Task[None]] = {}
        self._backend_ids: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._cancelling_attempts: set[asyncio.Task[None]] = set()
        self.cancelling = run.state == RunState.cancelling
        self.closing = False

    # --- what the service asks -------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run: running attempts are cancelled, nothing more starts."""
        if self.cancelling:
            return
        self.cancelling = True
        self._set_run(state=RunState.cancelling)
        for name, task in list(self._running.items()):
            backend_id = self._backend_ids.get(name)
            if backend_id is None:
                task.cancel()  # waiting for resources or a retry: nothing runs
            else:
                self._cancelling_attempts.add(asyncio.create_task(self._cancel_attempt(backend_id)))
        self._wake.set()

    async def _cancel_attempt(self, backend_id: str) -> None:
        try:
            await self.parts.backend.cancel(backend_id)
        except BackendError:
            log.exception("pipeline run %s: an attempt could not be cancelled", self.run.id)

    async def close(self) -> None:
        """The server stops: the run is left as it is, for the next server to take up."""
        self.closing = True
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the run ---------------------------------------------------------------------

    async def drive(self) -> RunRecord:
        now = utcnow()
        if not self.cancelling:
            self._set_run(state=RunState.running, started=self.run.started or now)
        await self._take_up()
        while not self.cancelling:
            started = self._start_ready()
            if not self._running and not started:
                break
            await self._wake.wait()
            self._wake.clear()
            if self.closing:  # let go (the server stops): left as it is, not ended
                raise asyncio.CancelledError
        while self._running:  # cancelling: the attempts end
            await self._wake.wait()
            self._wake.clear()
        await self._finish()
        await self.parts.writer.flush()
        return self.run

    async def _take_up(self) -> None:
        """Tasks a previous server left running: followed if the backend still knows
        their attempt, else run again."""
        for name, task in self.tasks.items():
            if task.state != TaskState.running:
                continue
            if task.backend_id and await self._adopt(task.backend_id):
                self._spawn(name, adopted=task.backend_id)
            else:
                self._set_task(name, state=TaskState.pending, backend_id=None)

    async def _adopt(self, backend_id: str) -> bool:
        try:
            return await self.parts.backend.adopt(backend_id)
        except BackendError:
            return False

    def _start_ready(self) -> bool:
        """Starts every pending task whose parents are complete; whether any was."""
        started = False
        while self._ready:
            name = self._ready.popleft()
            task = self.tasks[name]
            if not self._is_ready(name, task.state) or name in self._running:
                continue  # queued twice, or taken since
            started = True
            if task.spec.cmd is None:  # completes at once; its children may be ready
                now = utcnow()
                self._set_task(name, state=TaskState.complete, started=now, finished=now)
            else:
                self._spawn(name)
        return started

    def _is_ready(self, name: str, state: TaskState) -> bool:
        return state == TaskState.pending and self._unmet[name] == 0

    def _spawn(self, name: str, adopted: str | None = None) -> None:
        task = asyncio.create_task(self._attempts(name, adopted), name=f"pipeline-task-{name}")
        self._running[name] = task

    async def _attempts(self, name: str, adopted: str | None) -> None:
        try:
            await self._attempts_of(name, adopted)
        except asyncio.CancelledError:
            if not self.closing:
                self._set_task(name, state=TaskState.cancelled, finished=utcnow())
                raise
        except Exception as exc:  # a fault of the runner's own: the task fails, said why
            log.exception("pipeline run %s: task %s", self.run.id, name)
            self._fail(name, f"{type(exc).__name__}: {exc}")
        finally:
            self._running.pop(name, None)
            self._backend_ids.pop(name, None)
            self._wake.set()

    async def _attempts_of(self, name: str, adopted: str | None) -> None:
        spec = self.tasks[name].spec
        while True:
            if adopted is not None:
                self._backend_ids[name] = adopted
                ended = await self.parts.backend.wait(adopted)
                adopted = None
            else:
                ended = await self._attempt(name)
            task = self.tasks[name]
            if ended.ok:
                self._set_task(
                    name, state=TaskState.complete, exit_code=ended.exit_code, finished=utcnow()
                )
                return
            why = _why(ended)
            if self.cancelling or ended.reason == "cancelled":
                self._set_task(
                    name,
                    state=TaskState.cancelled,
                    exit_code=ended.exit_code,
                    reason=why,
                    finished=utcnow(),
                )
                return
            if task.attempts > spec.retry:
                self._set_task(name, exit_code=ended.exit_code)
                self._fail(name, why)
                return
            # Retried: pending again until its next attempt starts.
            self._set_task(
                name, state=TaskState.pending, exit_code=ended.exit_code, reason=why + ", retried"
            )
            await asyncio.sleep(self.parts.backoff.delay(task.attempts))

    async def _attempt(self, name: str) -> Ended:
        task = self.tasks[name]
        spec = task.spec
        resources = self.parts.resources
        if resources is not None:
            await resources.acquire(spec.cpus, spec.mem_mb)
        try:
            attempt = task.attempts + 1
            logfile = Path(self.run.project) / "logs" / f"{name}.{attempt}.log"
            launch = Launch(
                run_id=self.run.id,
                task=name,
                attempt=attempt,
                cmd=_command(spec.cmd or "", spec.stdout, spec.stderr),
                cwd=Path(self.run.project),
                log=logfile,
                cpus=spec.cpus,
                mem_mb=spec.mem_mb,
                walltime_s=spec.walltime_s,
                env=self._environment(name),
                stdin=spec.stdin,
                owner=self.run.submitter,
            )
            self._set_task(
                name,
                state=TaskState.running,
                attempts=attempt,
                started=utcnow(),
                finished=None,
                exit_code=None,
                reason="",
                log=str(logfile),
                backend_id=None,
            )
            try:
                backend_id = await self.parts.backend.start(launch)
            except BackendError as exc:
                return Ended(None, str(exc))
            self._backend_ids[name] = backend_id
            self._set_task(name, backend_id=backend_id)
            if self.cancelling:  # cancelled while it was being started
                await self._cancel_attempt(backend_id)
            return await self.parts.backend.wait(backend_id)
        finally:
            self._backend_ids.pop(name, None)
            if resources is not None:
                resources.release(spec.cpus, spec.mem_mb)

    def _environment(self, name: str) -> dict[str, str]:
        env = {"STRATO_PIPELINE_RUN": self.run.id, "STRATO_PIPELINE_TASK": name}
        if self.run.path:
            env["PATH"] = os.pathsep.join([*self.run.path, os.environ.get("PATH", "")])
        return env

    def _fail(self, name: str, why: str) -> None:
        self._set_task(name, state=TaskState.failed, reason=why, finished=utcnow())
        for descendant in self._descendants(name):
            if self.tasks[descendant].state == TaskState.pending:
                self._set_task(descendant, state=TaskState.skipped, reason=f"{name} failed")

    def _descendants(self, name: str) -> list[str]:
        found: list[str] = []
        seen = {name}
        stack = [name]
        while stack:
            for child in self._children[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    stack.append(child)
        return found

    # --- the end of a run --------------------------------------------------------------

    async def _finish(self) -> None:
        if self.cancelling:
            now = utcnow()
            for name, task in self.tasks.items():
                if task.state in (TaskState.pending, TaskState.running):
                    self._set_task(name, state=TaskState.cancelled, finished=now)
            self._set_run(state=RunState.cancelled, finished=now, reason="cancelled")
            return
        failed = [t for t in self.tasks.values() if t.state == TaskState.failed]
        stuck = [t for t in self.tasks.values() if t.state == TaskState.pending]
        if failed:
            first = min(failed, key=lambda t: (t.finished or utcnow(), t.position))
            tail = await asyncio.to_thread(poststeps.tail, first.log, TAIL_BYTES)
            reason = f"task {first.name!r} failed: {first.reason}"
            if len(failed) > 1:
                reason += f" (and {len(failed) - 1} more)"
            if tail:
                reason += f"\n--- the end of its log ---\n{tail}"
            await self._post_steps(RunState.failed, reason)
        elif stuck:  # not reachable from a valid workflow; said rather than hung
            names = ", ".join(t.name for t in stuck)
            await self._post_steps(RunState.failed, f"tasks never became ready: {names}")
        else:
            await self._post_steps(RunState.succeeded, "")

    async def _post_steps(self, state: RunState, reason: str) -> None:
        """Archive (a run that succeeded) and notify, each once per round of the run,
        recorded as done so that a restart does not do it twice."""
        steps = dict(self.run.steps)
        destination = self.run.post.archive_to or self.parts.archive_to
        if state == RunState.succeeded and destination and "archive" not in steps:
            try:
                archived = await asyncio.to_thread(
                    poststeps.archive, Path(self.run.project), Path(destination), self.run.id
                )
            except OSError as exc:
                state = RunState.failed
                reason = f"its tasks completed, but archiving to {destination} failed: {exc}"
            else:
                steps["archive"] = str(archived)
                self._set_run(steps=steps)
                await self.parts.writer.flush()
        ended = replace(self.run, state=state, reason=reason, finished=utcnow())
        if self.run.post.notify and self.parts.smtp_url and "notify" not in steps:
            text = poststeps.summary(ended, steps.get("archive"))
            try:
                await asyncio.to_thread(
                    poststeps.notify,
                    self.parts.smtp_url,
                    self.parts.mail_from,
                    self.run.post.notify,
                    ended,
                    text,
                )
                steps["notify"] = "sent to " + ", ".join(self.run.post.notify)
            except (OSError, Exception) as exc:  # smtplib's errors and the network's
                log.warning("pipeline run %s: notification not sent: %s", self.run.id, exc)
                steps["notify"] = f"not sent: {exc}"
        self._set_run(state=state, reason=reason, finished=ended.finished, steps=steps)

    # --- state changes -------------------------------------------------------------------

    def _set_task(self, name: str, **changes: object) -> None:
        before = self.tasks[name].state
        task = replace(self.tasks[name], **changes)  # type: ignore[arg-type]
        self.tasks[name] = task
        self.parts.writer.save(None, task)
        if task.state == before:
            return
        # Within a run, complete is final (resets happen between runs), and a task put
        # back to pending while its attempts go on is started by them, not from the queue.
        if task.state == TaskState.complete:
            for child in self._children[name]:
                self._unmet[child] -= 1
                if self._is_ready(child, self.tasks[child].state):
                    self._ready.append(child)
        elif self._is_ready(name, task.state) and name not in self._running:
            self._ready.append(name)  # a task a previous server left running, run again

    def _set_run(self, **changes: object) -> None:
        self.run = replace(self.run, updated=utcnow(), **changes)  # type: ignore[arg-type]
        self.parts.writer.save(self.run)


def _why(ended: Ended) -> str:
    if ended.reason:
        return ended.reason
    return f"exit code {ended.exit_code}"


def _command(cmd: str, stdout: str | None, stderr: str | None) -> str:
    """``cmd`` with the task's own stdout and stderr directives as redirections."""
    if not stdout and not stderr:
        return cmd
    redirections = ""
    if stdout:
        redirections += f" >{shlex.quote(stdout)}"
    if stderr:
        redirections += f" 2>{shlex.quote(stderr)}"
    return f"{{\n{cmd}\n}}{redirections}"
