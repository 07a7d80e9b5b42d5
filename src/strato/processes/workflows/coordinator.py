"""Running a workflow: an asyncio task in the server drives its steps through the
process service (so a step's process id is routed like any execution's) and reports on
the workflow's own job, a *tracked* job of the engine (``JobEngine.track``): listed,
waited for and dismissed like any job.

Each step is submitted once the steps it needs have succeeded, with their outputs bound
into its inputs (a result file by its location); completion is pushed by the engine
(``wait``), so there is no polling. The first step that fails fails the workflow, naming
the step and its reason, and the steps still running are cancelled; dismissing the
workflow's job cancels its running steps. When all steps have succeeded, the outputs the
workflow names are its results, result files hard-linked (or copied) into the workflow's
own result directory, so they live as long as its job.

A server that stops while a workflow runs does not resume it: the engine's recovery
fails the tracked job with the reason (steps already submitted finish on their own, as
jobs of their own). The steps of a workflow are known to the server that ran it; after a
restart the workflow's status no longer lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from strato.auth import Principal
from strato.errors import NotFound, StratoError
from strato.job_engine import FINISHED, JobRecord, JobStatus
from strato.processes.service import ProcessService, owner_of
from strato.processes.workflows.endpoint import TASK
from strato.processes.workflows.plan import WORKFLOW, Plan, Ref, Step, is_ref

log = logging.getLogger(__name__)

# Finished workflows whose steps are still listed by their status (newest kept).
KEPT = 2000


@dataclass
class StepState:
    name: str
    process_id: str
    job_id: str | None = None
    status: str = "waiting"  # until submitted; then the job's status
    progress: int = 0
    error: str | None = None
    results: dict[str, Any] | None = None


@dataclass
class Run:
    plan: Plan
    who: Principal
    steps: dict[str, StepState] = field(default_factory=dict)


class Workflows:
    def __init__(self, service: ProcessService) -> None:
        self.service = service
        self.jobs = service.jobs
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- starting and looking -----------------------------------------------------------

    async def start(self, plan: Plan, who: Principal) -> JobRecord:
        """The workflow's job, visible at once; its steps start in the background."""
        job = await run_in_threadpool(
            self.jobs.track,
            task=TASK,
            inputs=plan.to_json(),
            owner=owner_of(who),
            process_id=WORKFLOW,
        )
        run = Run(plan, who, {s.name: StepState(s.name, s.process_id) for s in plan.steps.values()})
        self._runs[job.id] = run
        while len(self._runs) > KEPT:
            oldest = next(iter(self._runs))
            if oldest == job.id:
                break
            del self._runs[oldest]
        task = asyncio.create_task(self._drive(job.id, run), name=f"workflow {job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def steps(self, job_id: str) -> list[dict[str, Any]] | None:
        """Each step's name, process, job id, status and progress, fresh from the engine
        for those running; None for a workflow this server did not run."""
        run = self._runs.get(job_id)
        if run is None:
            return None
        shown = []
        for state in run.steps.values():
            status, progress, message = state.status, state.progress, state.error
            if state.job_id is not None and status not in FINISHED:
                with contextlib.suppress(NotFound):
                    live = self.jobs.get(state.job_id)
                    status, progress = live.status.value, live.progress
                    message = live.message or None
            item: dict[str, Any] = {
                "name": state.name,
                "processID": state.process_id,
                "status": status,
                "progress": progress,
            }
            if state.job_id is not None:
                item["jobID"] = state.job_id
            if message:
                item["message"] = message
            shown.append(item)
        return shown

    def output_file(self, job: JobRecord, output: str) -> Path | None:
        """The file of one of a finished workflow's outputs, if it is a file."""
        value = (job.results or {}).get(output)
        if not (isinstance(value, dict) and isinstance(value.get("href"), str)):
            return None
        href = value["href"]
        if "/" in href or href.startswith("."):
            return None
        path = (self.jobs.result_root / job.id) / href
        return path if path.exists() else None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- driving ------------------------------------------------------------------------

    async def _drive(self, wid: str, run: Run) -> None:
        ended = asyncio.ensure_future(self.jobs.wait(wid))
        waits: dict[asyncio.Future[JobRecord], str] = {}
        try:
            # The engine's reports write to the database: not on the event loop.
            await run_in_threadpool(self.jobs.started, wid)
            while True:
                for step in run.plan.steps.values():
                    state = run.steps[step.name]
                    if state.status != "waiting" or not all(
                        run.steps[n].status == JobStatus.successful for n in step.needs
                    ):
                        continue
                    try:
                        job = await run_in_threadpool(
                            self.service.submit, step.process_id, self._bind(step, run), run.who
                        )
                    except StratoError as exc:
                        # Its class, as a task's reason has it: a refusal of the step's
                        # inputs keeps its 4xx (strato.processes.model.errors.job_failure).
                        refused = f"was refused: {type(exc).__name__}: {exc.detail}"
                        await self._fail(wid, run, step, refused)
                        return
                    state.job_id, state.status = job.id, job.status.value
                    waits[asyncio.ensure_future(self._wait_step(job.id))] = step.name
                if not waits:
                    break
                done, _ = await asyncio.wait([*waits, ended], return_when=asyncio.FIRST_COMPLETED)
                if ended in done:  # cancelled or dismissed from outside
                    await self._cancel_steps(run)
                    return
                for future in done:
                    state = run.steps[waits.pop(future)]
                    try:
                        record = future.result()
                    except StepGone:
                        state.status = JobStatus.dismissed.value
                        await self._fail(wid, run, run.plan.steps[state.name], "was dismissed")
                        return
                    state.status, state.progress = record.status.value, record.progress
                    state.error, state.results = record.error, record.results
                    if record.status is not JobStatus.successful:
                        reason = (
                            f"failed: {record.error or 'no reason given'}"
                            if record.status is JobStatus.failed
                            else f"was {record.status.value}"
                        )
                        await self._fail(wid, run, run.plan.steps[state.name], reason)
                        return
                finished = sum(s.status == JobStatus.successful for s in run.steps.values())
                total = len(run.steps)
                await run_in_threadpool(
                    self.jobs.progress,
                    wid,
                    min(99, 100 * finished // total),
                    f"{finished} of {total} steps done",
                )
            outputs = await run_in_threadpool(self._collect, wid, run)
            await run_in_threadpool(self.jobs.succeeded, wid, outputs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("workflow %s: the coordinator failed", wid)
            reason = f"the workflow's coordinator failed: {exc}"
            await run_in_threadpool(self.jobs.failed, wid, reason, False)
            await self._cancel_steps(run)
        finally:
            for future in [*waits, ended]:
                future.cancel()

    async def _wait_step(self, job_id: str) -> JobRecord:
        try:
            return await self.jobs.wait(job_id)
        except NotFound:  # dismissed by its owner while it ran
            raise StepGone(job_id) from None

    async def _fail(self, wid: str, run: Run, step: Step, reason: str) -> None:
        why = f"step {step.name!r} ({step.process_id}) {reason}"
        await run_in_threadpool(self.jobs.failed, wid, why, False)
        await self._cancel_steps(run)

    async def _cancel_steps(self, run: Run) -> None:
        for state in run.steps.values():
            if state.job_id is not None and state.status not in FINISHED:
                with contextlib.suppress(NotFound):
                    record = await run_in_threadpool(self.jobs.cancel, state.job_id)
                    state.status, state.progress = record.status.value, record.progress
            elif state.job_id is None:
                state.status = "skipped"

    # --- data between steps -------------------------------------------------------------

    def _location(self, state: StepState, value: Any) -> Any:
        """An output as the next step takes it: a reference by its location (a file in
        the step's result directory by its path), any other value as itself."""
        if isinstance(value, dict) and isinstance(value.get("href"), str):
            href = value["href"]
            if "://" in href or href.startswith("/"):
                return href
            assert state.job_id is not None
            return str((self.jobs.result_root / state.job_id) / href)
        return value

    def _bind(self, step: Step, run: Run) -> dict[str, Any]:
        def walk(value: Any) -> Any:
            if is_ref(value):
                ref = Ref(value["step"], value.get("output", ""))
                state = run.steps[ref.step]
                results = state.results or {}
                if ref.output not in results:
                    raise StepGone(f"step {ref.step!r} gave no output {ref.output!r}")
                return self._location(state, results[ref.output])
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        bound: dict[str, Any] = walk(step.inputs)
        return bound

    def _collect(self, wid: str, run: Run) -> dict[str, Any]:
        """The workflow's outputs; result files linked into its own result directory."""
        outputs: dict[str, Any] = {}
        target = self.jobs.result_root / wid
        for name, ref in run.plan.outputs.items():
            state = run.steps[ref.step]
            value = (state.results or {}).get(ref.output)
            if isinstance(value, dict) and isinstance(value.get("href"), str):
                source = Path(str(self._location(state, value)))
                if source.is_absolute() and source.exists():
                    suffix = "".join(source.suffixes) or ""
                    target.mkdir(parents=True, exist_ok=True)
                    _link(source, target / f"{name}{suffix}")
                    value = {**value, "href": f"{name}{suffix}"}
            outputs[name] = value
        return outputs


class StepGone(StratoError):
    code = "step-gone"
    title = "A workflow step is gone"


def _link(source: Path, target: Path) -> None:
    """Hard links where the file system allows (no copy of a large result), else a copy."""
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if source.is_dir():  # a Zarr store
        shutil.copytree(source, target, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(source), str(target))


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target
