"""strato.pipelines as a platform capability: Jetstream-format pipelines run on the
server, submitted through Centro's API (``/api/v1``) and GA4GH WES (``/ga4gh/wes/v1``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, Periodic, ReadinessCheck, describe
from strato.pipelines.settings import PipelinesSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator
    from strato.pipelines.service import PipelineRuns

log = logging.getLogger(__name__)
# Between tries to take up the runs a previous server left, while the database cannot.
TAKE_UP_RETRY = (1.0, 60.0)


class PipelinesCapability:
    name = "pipelines"
    after: tuple[str, ...] = ("jobs",)
    settings_section = PipelinesSettings
    migrations = "strato.pipelines.migrations"

    def nav(self) -> list[NavLink]:
        return [
            NavLink(
                "Pipelines",
                "/pipelines",
                "Jetstream-format pipelines run on the server (Centro's API, GA4GH WES).",
            )
        ]

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.pipelines.api.centro import make_router as centro_router
        from strato.pipelines.api.wes import make_router as wes_router
        from strato.pipelines.service import open_runs
        from strato.pipelines.submissions import Submissions
        from strato.pipelines.web.pages import make_router as pages_router

        options = PipelinesSettings.of(ctx.settings)
        dispatch = None
        if options.driver == "celery":  # runs are driven by `strato pipelines worker`
            from strato.pipelines.celery_driver import Dispatch

            dispatch = Dispatch(options)
        backend = None
        if options.backend == "jobs":  # each attempt a job of the jobs capability's engine
            from strato.pipelines.backends.jobs import JobsBackend

            if ctx.jobs is None:
                raise RuntimeError("pipelines.backend = jobs needs the jobs capability")
            backend = JobsBackend(ctx.jobs, kill_grace=options.kill_grace)
        runs = open_runs(ctx.engine, options, ctx.settings, backend, dispatch=dispatch)
        submissions = Submissions(runs, options)
        app.state.pipeline_runs = runs
        public_url = ctx.settings.public_url
        app.include_router(centro_router(submissions, auth, public_url))
        app.include_router(wes_router(submissions, auth, public_url))
        app.include_router(
            pages_router(submissions, auth, app.state.templates, app.state.nav, ctx.settings)
        )

    def register_cli(self, app: typer.Typer) -> None:
        from strato.pipelines.remote_cli import register

        register(app)

    def on_start(self, ctx: Context) -> None:
        # Runs are driven on the web app's event loop (lifespan).
        pass

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        return []

    def periodic(self, ctx: Context) -> list[Periodic]:
        """`strato scheduler`'s part: with runs driven by Celery workers, the sweep that
        sends them the runs nobody drives (Celery beat's role in Centro)."""
        from strato.pipelines.celery_driver import sweeper_for

        sweeper = sweeper_for(ctx.settings, ctx.engine)
        return [] if sweeper is None else [sweeper]

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        runs: PipelineRuns | None = getattr(app.state, "pipeline_runs", None)
        taking_up = None
        if runs is not None:
            taking_up = asyncio.create_task(_take_up(runs), name="pipeline-runs-take-up")
        try:
            yield
        finally:
            if taking_up is not None:
                taking_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await taking_up
            if runs is not None:
                await runs.close()


async def _take_up(runs: PipelineRuns) -> None:
    """Takes up the runs a previous server left active. A database that is down or not
    migrated at start must not keep the node from serving (its requests answer 503
    where they meet it): tried again, waiting longer each time."""
    from sqlalchemy.exc import SQLAlchemyError

    from strato.errors import Unavailable
    from strato.retry import Backoff

    backoff = Backoff(*TAKE_UP_RETRY)
    attempt = 0
    while True:
        try:
            taken = await runs.start()
        except (SQLAlchemyError, OSError, Unavailable) as exc:
            attempt += 1
            log.warning(
                "pipeline runs left by a previous server are taken up later: %s", describe(exc)
            )
            await asyncio.sleep(backoff.delay(attempt))
            continue
        if taken:
            log.info("took up %d pipeline runs a previous server left", len(taken))
        return


capability = PipelinesCapability()
