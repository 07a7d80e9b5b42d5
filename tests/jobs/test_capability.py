"""The jobs capability offers its engine through the Context, and the web app runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from strato.app import create_app
from strato.capabilities import installed
from strato.context import Context
from strato.job_engine import JobStatus
from strato.jobs.engine import JobService
from strato.settings import Settings
from tests.jobs.conftest import PATIENCE


def test_the_web_app_offers_and_runs_the_engine(
    settings: Settings, context: Context, serve: Callable[[Any], str]
) -> None:
    app = create_app(settings, context=context)
    assert isinstance(context.jobs, JobService)
    assert app.state.jobs is context.jobs
    url = serve(app)
    assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    job = context.jobs.submit(
        task="strato.jobs.demo.tasks:noop", inputs={}, owner="", process_id="noop"
    )
    assert asyncio.run(context.jobs.wait(job.id, PATIENCE)).status == JobStatus.successful


def test_switched_off_there_is_no_engine_and_no_table(tmp_path: Any) -> None:
    # With those that need jobs (processes) switched off too.
    needing = [e.name for e in installed() if e.name not in ("data", "catalog")]
    settings = Settings(data_dir=tmp_path, capabilities={"disabled": needing})
    assert "jobs" in needing
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        create_app(settings, context=ctx)
        assert ctx.jobs is None
        with ctx.engine.connect() as conn:
            assert not conn.dialect.has_table(conn, "jobs")
    finally:
        ctx.close()
