"""strato.processes as a platform capability: OGC API - Processes over the job engine
another capability offers through the Context (``ctx.jobs``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from strato.capabilities import NavLink, ReadinessCheck
from strato.processes.settings import ProcessesSettings

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator


class ProcessesCapability:
    name = "processes"
    # jobs: the engine it runs processes on; data: the datasets built-in processes read.
    after: tuple[str, ...] = ("jobs", "data")
    settings_section = ProcessesSettings
    # No tables: jobs are the job engine's.
    migrations = None

    def nav(self) -> list[NavLink]:
        return [
            NavLink(
                "Processes",
                "/processes-api/processes",
                "Analytic operations run as jobs (OGC API - Processes).",
            )
        ]

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None:
        from strato.errors import Unavailable
        from strato.processes.analytics import ClimatologyAnalytics
        from strato.processes.api.fast_jobs import JobRequestsFastPath
        from strato.processes.api.routes import make_router
        from strato.processes.api.stratus import make_router as make_stratus_router
        from strato.processes.callbacks import Callbacks
        from strato.processes.registry import Registry
        from strato.processes.service import ProcessService
        from strato.processes.web.pages import Pages
        from strato.processes.workflows.coordinator import Workflows
        from strato.processes.workflows.endpoint import endpoint as workflow_endpoint

        if ctx.jobs is None:
            raise Unavailable(
                "no job engine: the jobs capability is switched off or not installed "
                "(switch processes off too, or jobs on)"
            )
        options = ProcessesSettings.of(ctx.settings)
        providers = None
        if options.providers:
            from strato.processes.providers.base import Providers

            providers = Providers(options.providers)
        registry = Registry.from_entry_points(providers)
        # Workflows are run by the server's coordinator, so they come with it.
        registry.add(workflow_endpoint)
        service = ProcessService(registry, ctx.jobs, options)
        # strato.data's groupby diagnostics run as the climatology process, but for a node
        # that sends its computations to a Dask cluster: a job worker would compute them
        # in its own process, off the cluster, so data keeps computing them there.
        if ctx.settings.dask_scheduler is None:
            ctx.provide_analytics(ClimatologyAnalytics(ctx.jobs, options.job_time_limit))
        callbacks = Callbacks(ctx.jobs, options)
        workflows = Workflows(service)
        app.state.processes = service
        app.state.process_callbacks = callbacks
        app.state.process_workflows = workflows
        pages = Pages(app.state.templates, app.state.nav, ctx.settings)
        app.include_router(make_router(service, callbacks, pages, auth, ctx.settings, workflows))
        app.include_router(make_stratus_router(service, workflows, auth, ctx.settings))
        # Inside the request-context middleware (create_app adds it after the
        # capabilities), so fast answers carry request ids and count in the metrics.
        app.add_middleware(
            JobRequestsFastPath,
            service=service,
            identities=ctx.identities,
            public_url=ctx.settings.public_url,
        )

    def register_cli(self, app: typer.Typer) -> None:
        from strato.processes.cli import register

        register(app)

    def on_start(self, ctx: Context) -> None:
        pass

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        return []

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        yield
        workflows = getattr(app.state, "process_workflows", None)
        if workflows is not None:
            await workflows.close()
        callbacks = getattr(app.state, "process_callbacks", None)
        if callbacks is not None:
            await callbacks.close()
        service = getattr(app.state, "processes", None)
        if service is not None and service.registry.providers is not None:
            service.registry.providers.close()


capability = ProcessesCapability()
