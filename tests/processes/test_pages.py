"""The processes pages in a real Chromium: the form generated from hello-world's
description executes it as a job, and the job page follows it to its results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strato.app import create_app
from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings

pytestmark = pytest.mark.browser


def test_execute_hello_world_from_its_page_and_follow_the_job(
    tmp_path: Path, serve: Callable[[Any], str], browser: Any
) -> None:
    settings = Settings(data_dir=tmp_path / "state", log=LogSettings(access=False))
    ctx = Context.open(settings)
    try:
        ctx.migrate()
        ctx.identities.create_user("ann", scopes={Scope.READ, Scope.PROCESS})
        token = ctx.identities.create_token("ann", {Scope.READ, Scope.PROCESS}).secret
        url = serve(create_app(settings, context=ctx))
        # The browser carries the token on every request, its page's fetch included.
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{url}/processes-api/processes/hello-world?f=html")
        # One field per input of the description, the required one marked so.
        assert page.locator("#input-name").get_attribute("required") is not None
        assert page.locator("#input-message").count() == 1
        assert "echo" in page.locator("#outputs").inner_text()
        page.fill("#input-name", "Ann")
        page.fill("#input-message", "from a browser")
        page.get_by_role("button", name="Execute as a job").click()

        # The job page, reloading itself until the job has ended.
        page.wait_for_url("**/processes-api/jobs/*")
        page.locator("#status", has_text="successful").wait_for(timeout=30000)
        assert "hello-world" in page.locator("#job").inner_text()
        page.locator("#results").click()
        page.wait_for_url("**/results")
        assert "Hello Ann! from a browser" in page.content()
        assert errors == []
        context.close()
    finally:
        ctx.close()
