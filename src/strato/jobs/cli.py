"""`strato jobs`: list, show and cancel jobs (from the database: no worker is started)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from strato.job_engine import JobRecord, JobStatus

if TYPE_CHECKING:
    from strato.jobs.store import JobStore

jobs_app = typer.Typer(help="List, show and cancel jobs.", no_args_is_help=True)


def _store(ctx: typer.Context) -> JobStore:
    from strato.cli import state
    from strato.context import Context
    from strato.jobs.store import JobStore

    c = Context.open(state(ctx).settings())
    c.migrate()
    return JobStore(c.sessions)


def _line(job: JobRecord) -> str:
    created = job.created.isoformat().replace("+00:00", "Z")
    what = job.error or job.message
    return (
        f"{job.id}  {job.status.value:<10} {job.progress:>3}%  {created}  {job.process_id}  {what}"
    )


@jobs_app.command("list")
def list_(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="Only this owner's jobs.")] = None,
    process: Annotated[str | None, typer.Option(help="Only jobs of this process.")] = None,
    status: Annotated[
        list[JobStatus] | None, typer.Option(help="Only jobs in this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
) -> None:
    """Jobs, newest first: id, status, progress, created, process, message."""
    for job in _store(ctx).list(owner=owner, process_id=process, status=status or (), limit=limit):
        typer.echo(_line(job))


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: str) -> None:
    """A job's whole record, as JSON."""
    job = _store(ctx).get(job_id)
    record = {
        "id": job.id,
        "owner": job.owner,
        "process_id": job.process_id,
        "task": job.task,
        "inputs": job.inputs,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "created": job.created.isoformat(),
        "started": job.started.isoformat() if job.started else None,
        "finished": job.finished.isoformat() if job.finished else None,
        "updated": job.updated.isoformat(),
        "results": job.results,
        "attempts": job.attempts,
        "error": job.error,
    }
    typer.echo(json.dumps(record, indent=2))


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: str) -> None:
    """Mark a job dismissed. A job running in a server is marked; its task is stopped by
    cancelling it through the server (DELETE /jobs/{id})."""
    from dataclasses import replace

    from strato.db import utcnow

    store = _store(ctx)
    job = store.get(job_id)
    if job.done:
        typer.echo(f"{job.id} is already {job.status.value}")
        return
    now = utcnow()
    store.save(
        [replace(job, status=JobStatus.dismissed, message="cancelled", finished=now, updated=now)]
    )
    typer.echo(f"{job.id} dismissed")


def register(app: typer.Typer) -> None:
    from strato.jobs.schedule_cli import register as register_schedules
    from strato.jobs.worker_cli import register as register_worker

    register_schedules(app, jobs_app)
    register_worker(app)
    app.add_typer(jobs_app, name="jobs")
