"""`strato pipelines worker`: a Celery worker driving pipeline runs (``pipelines.driver =
"celery"``; :mod:`strato.pipelines.celery_driver`). Added to `strato pipelines`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from strato.pipelines.cli import pipelines_app


@pipelines_app.command("worker")
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Runs this worker drives at once.")
    ] = 16,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery's log level.")] = "WARNING",
) -> None:
    """Drive pipeline runs sent to the Celery queue (pipelines.celery_broker,
    pipelines.celery_queue) until stopped; `strato scheduler` sends again the runs of a
    worker that died. Runs are driven here with the backend the settings name."""
    from strato.cli import state
    from strato.context import Context
    from strato.logs import configure_logging
    from strato.pipelines.celery_driver import serve
    from strato.pipelines.settings import PipelinesSettings

    settings = state(ctx).settings()
    try:
        options = PipelinesSettings.of(settings)
    except LookupError:
        typer.echo("error: the pipelines capability is switched off", err=True)
        raise typer.Exit(2) from None
    if options.driver != "celery" or not options.celery_broker:
        typer.echo(
            "error: set pipelines.driver = celery and pipelines.celery_broker "
            "(STRATO_PIPELINES_DRIVER, STRATO_PIPELINES_CELERY_BROKER)",
            err=True,
        )
        raise typer.Exit(2)
    if options.backend == "jobs":
        typer.echo(
            "error: a worker drives runs on the local or slurm backend; with the jobs "
            "backend, runs are driven by the servers (pipelines.driver = server)",
            err=True,
        )
        raise typer.Exit(2)
    configure_logging(settings.log)
    c = Context.open(settings)
    c.migrate()
    typer.echo(f"pipelines worker {options.node_name or os.uname().nodename} (pid {os.getpid()})")
    try:
        serve(settings, c.engine, concurrency=concurrency, loglevel=loglevel)
    finally:
        c.close()
