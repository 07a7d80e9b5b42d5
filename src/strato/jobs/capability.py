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


class JobsCapability:
    name = "jobs"
    after: tuple[str, ...] = ()
    settings_section = JobsSettings
    migrations = "strato.jobs.migrations"

    def nav(self) -> list[NavLink]:
        # Jobs are seen through the processes pages.
        return []

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.jobs.service import open_jobs

        engine = open_jobs(ctx.sessions, ctx.settings)
        app.state.jobs = engine
        # What the capabilities installed after this one (processes) submit jobs to.
        ctx.provide_jobs(engine)

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
        if engine is not None:
            # Takes up the jobs a previous server left unfinished.
            engine.start()
        try:
            yield
        finally:
            if engine is not None:
                engine.close()


capability = JobsCapability()
