"""`strato worker`: a Celery worker of the celery executor, on the strato app."""

from __future__ import annotations

from typing import Annotated

import typer


def worker(
    ctx: typer.Context,
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated queues to take jobs from; default jobs.queue."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (one job each); default jobs.workers."),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery's log level.")] = "INFO",
    hostname: Annotated[
        str | None, typer.Option(help="The worker's node name; default celery@<host>.")
    ] = None,
) -> None:
    """Run jobs of the celery executor (jobs.executor = celery) from its broker. The
    dask executor's workers are dask's own (`dask worker <scheduler>`)."""
    from strato.cli import state
    from strato.jobs.celery.app import make_app
    from strato.jobs.settings import JobsSettings
    from strato.logs import configure_logging

    settings = state(ctx).settings()
    configure_logging(settings.log)
    jobs = JobsSettings.of(settings)
    if jobs.executor != "celery":
        typer.echo(
            f"error: jobs.executor is {jobs.executor!r}; `strato worker` runs the celery "
            "executor's jobs (STRATO_JOBS_EXECUTOR=celery)",
            err=True,
        )
        raise typer.Exit(2)
    app = make_app(jobs.broker_url.get_secret_value(), jobs.queue)
    argv = [
        "worker",
        "--queues",
        queues or jobs.queue,
        "--concurrency",
        str(concurrency or jobs.pool_size),
        "--loglevel",
        loglevel,
        "--pool",
        "prefork",  # a process per job: what revoke(terminate) and time limits kill
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
