"""strato.jobs as a platform capability: the job engine offered through ``ctx.jobs``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck
from strato.jobs.settings import JobsSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator
    from strato.jobs.engine import JobService
    from strato.jobs.scheduler import Scheduler


class JobsCapability:
    name = "jobs"
    after: tuple[str, ...] = ()
    settings_section = JobsSettings
    migrations = "strato.jobs.migrations"

    def nav(self) -> list[NavLink]:
        # Jobs are seen through the processes pages.
        return []

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.jobs.schedules import ScheduleService, ScheduleStore
        from strato.jobs.service import open_jobs

        engine = open_jobs(ctx.sessions, ctx.settings)
        app.state.jobs = engine
        # What the capabilities installed after this one (processes) submit jobs to.
        ctx.provide_jobs(engine)
        schedules = ScheduleService(ScheduleStore(ctx.sessions))
        app.state.schedules = schedules
        # Periodic jobs, for those installed after this one (pipelines).
        ctx.provide_schedules(schedules)

    def register_cli(self, app: typer.Typer) -> None:
        from strato.jobs.cli import register

        register(app)

    def on_start(self, ctx: Context) -> None:
        # The engine starts with the web app (lifespan), where its workers are needed.
        pass

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        return []

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        engine = getattr(app.state, "jobs", None)
        scheduler = None
        if engine is not None:
            # Takes up the jobs a previous server left unfinished.
            engine.start()
            scheduler = _scheduler(app, engine)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.close()
            if engine is not None:
                engine.close()


def _scheduler(app: FastAPI, engine: JobService) -> Scheduler | None:
    """The scheduler of periodic jobs, started, in `strato up` (`strato api` serves
    only) when the settings ask for it."""
    from strato.jobs.scheduler import Scheduler

    ctx: Context = app.state.context
    jobs = JobsSettings.of(ctx.settings)
    if not jobs.scheduler or ctx.serve_only:
        return None
    scheduler = Scheduler(app.state.schedules, engine, rescan=jobs.schedule_rescan)
    scheduler.start()
    return scheduler


capability = JobsCapability()
