"""`strato jobs schedule add|list|show|remove|enable|disable` (on the database: a running
scheduler sees the change within its rescan) and `strato scheduler` (one in the
foreground)."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strato.errors import InvalidInput
from strato.job_engine import ScheduleRecord

if TYPE_CHECKING:
    from strato.jobs.schedules import ScheduleService

schedule_app = typer.Typer(help="Periodic jobs: cron schedules.", no_args_is_help=True)


def _service(ctx: typer.Context) -> ScheduleService:
    from strato.cli import state
    from strato.context import Context
    from strato.jobs.schedules import ScheduleService, ScheduleStore

    c = Context.open(state(ctx).settings())
    c.migrate()
    return ScheduleService(ScheduleStore(c.sessions))


def _when(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else "-"


def _line(s: ScheduleRecord) -> str:
    state = "enabled " if s.enabled else "disabled"
    return (
        f"{s.name}  {state}  {s.cron!r} {s.timezone}  next {_when(s.next_run)}  "
        f"last {_when(s.last_run)} {s.last_job_id or '-'}  {s.task}"
    )


def _inputs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"inputs: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidInput("inputs: a JSON object is needed")
    return value


@schedule_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Unique name of the schedule.")],
    cron: Annotated[
        str, typer.Argument(help="Five fields: minute hour day-of-month month day-of-week.")
    ],
    task: Annotated[str, typer.Argument(help="The 'package.module:function' to run.")],
    inputs: Annotated[str, typer.Option(help="The task's inputs, a JSON object.")] = "{}",
    tz: Annotated[str, typer.Option("--tz", help="Time zone of the cron fields.")] = "UTC",
    owner: Annotated[str, typer.Option(help="Whose jobs the runs are.")] = "",
    process: Annotated[
        str | None, typer.Option(help="Process id of the jobs; default the task.")
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
) -> None:
    """Add a schedule; prints it with its next run."""
    added = _service(ctx).add(
        name=name,
        cron=cron,
        task=task,
        inputs=_inputs(inputs),
        owner=owner,
        process_id=process or task,
        timezone=tz,
        enabled=not disabled,
    )
    typer.echo(_line(added))


@schedule_app.command("list")
def list_(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="Only this owner's schedules.")] = None,
) -> None:
    """Schedules by name: state, cron, time zone, next run, last run and its job, task."""
    for schedule in _service(ctx).list(owner=owner):
        typer.echo(_line(schedule))


@schedule_app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """A schedule's whole record, as JSON."""
    s = _service(ctx).get(name)
    record = {
        "id": s.id,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "task": s.task,
        "inputs": s.inputs,
        "owner": s.owner,
        "process_id": s.process_id,
        "enabled": s.enabled,
        "last_run": s.last_run.isoformat() if s.last_run else None,
        "next_run": s.next_run.isoformat() if s.next_run else None,
        "last_job_id": s.last_job_id,
        "created": s.created.isoformat(),
        "updated": s.updated.isoformat(),
    }
    typer.echo(json.dumps(record, indent=2))


@schedule_app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Remove a schedule (the jobs it submitted stay)."""
    _service(ctx).remove(name)
    typer.echo(f"{name} removed")


@schedule_app.command("enable")
def enable(ctx: typer.Context, name: str) -> None:
    """Switch a schedule on: its next run is the next time it matches from now."""
    typer.echo(_line(_service(ctx).update(name, enabled=True)))


@schedule_app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Switch a schedule off (no run is owed for the time it is off)."""
    typer.echo(_line(_service(ctx).update(name, enabled=False)))


def scheduler(ctx: typer.Context) -> None:
    """Run the scheduler of periodic jobs in the foreground, until interrupted.

    Jobs are submitted to the executor the settings name (the local one runs them in this
    process). Beside `strato up` (which runs one too unless jobs.scheduler is off) each
    due run is still submitted once. It also runs what capabilities do periodically:
    with pipelines driven by Celery workers (pipelines.driver = celery), it sends them the
    runs nobody drives."""
    from strato.capabilities import periodic_work
    from strato.cli import state
    from strato.context import Context
    from strato.jobs.scheduler import Scheduler
    from strato.jobs.schedules import ScheduleService, ScheduleStore
    from strato.jobs.service import open_jobs
    from strato.jobs.settings import JobsSettings

    settings = state(ctx).settings()
    c = Context.open(settings)
    c.migrate()
    engine = open_jobs(c.sessions, settings)
    # The unfinished jobs of the database are a server's to take up, not this one's.
    engine.start(recover=False)
    runner = Scheduler(
        ScheduleService(ScheduleStore(c.sessions)),
        engine,
        rescan=JobsSettings.of(settings).schedule_rescan,
    )

    def stop(signum: int, frame: object) -> None:
        runner.close()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    # What capabilities run periodically of their own (pipelines on Celery: Celery beat's
    # role, sending the runs nobody drives to the workers, as Centro's beat did).
    others = periodic_work(settings, c)
    runner.start()
    for work in others:
        work.start()
    typer.echo(f"scheduler running on node {settings.node_name!r} (interrupt to stop)")
    try:
        runner.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for work in others:
            work.close()
        runner.close()
        engine.close()
        c.close()


def register(app: typer.Typer, jobs_app: typer.Typer) -> None:
    jobs_app.add_typer(schedule_app, name="schedule")
    app.command("scheduler")(scheduler)
