"""The processes pages in a real Chromium: the form generated from hello-world's
description executes it as a job, and the job page follows it to its results; the jobs
page follows jobs live (new ones appear, status and progress change, without a reload)
and dismisses them; a workflow's page follows each of its steps; job messages stay text."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.auth import Scope
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.processes.conftest import Node

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


# A job message no page may run as HTML: the gate reports it as its progress message.
HOSTILE = '<img src=x onerror="window.pwned=1">'


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=60) as client:
        yield client


def as_user(browser: Any, node: Node, who: str = "ann") -> Any:
    """A page whose every request, its scripts' fetches included, carries ``who``'s token;
    dismissing asks for confirmation, which this user gives."""
    context = browser.new_context(extra_http_headers=node.auth(who))
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    # Set once per document: still there later only if the page was never reloaded.
    return page


def mark_document(page: Any) -> None:
    page.evaluate("window.sameDocument = true")


def same_document(page: Any) -> bool:
    return bool(page.evaluate("window.sameDocument === true"))


def test_jobs_page_follows_a_job_live_and_dismisses_it(
    http: httpx.Client, node: Node, browser: Any
) -> None:
    page = as_user(browser, node)
    page.goto(f"{node.url}/jobs?f=html")
    mark_document(page)

    gate = node.gates / secrets.token_hex(8)
    answer = http.post(
        "/processes/gate/execution",
        json={"inputs": {"path": str(gate), "name": "live", "note": HOSTILE}},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["jobID"]

    # Submitted after the page was drawn, it appears on it, running, with its message as text.
    row = page.locator(f'#jobs tr[data-key="{job_id}"]')
    row.locator(".status", has_text="running").wait_for(timeout=30000)
    assert row.locator(".message").inner_text() == HOSTILE
    assert row.locator("img").count() == 0
    assert row.locator("progress").get_attribute("value") == "10"
    assert row.get_by_role("link", name="results").count() == 0

    gate.touch()
    row.locator(".status", has_text="successful").wait_for(timeout=30000)
    assert row.locator("progress").get_attribute("value") == "100"
    results = row.get_by_role("link", name="results")
    assert results.get_attribute("href").endswith(f"/jobs/{job_id}/results")
    assert same_document(page)

    row.get_by_role("button", name="Dismiss").click()
    row.wait_for(state="detached", timeout=30000)
    assert http.get(f"/jobs/{job_id}", headers=node.auth("ann")).status_code == 404
    # The next refresh of the list does not bring it back.
    with page.expect_response(lambda r: "/jobs?" in r.url and "f=json" in r.url, timeout=70000):
        pass
    assert page.locator(f'#jobs tr[data-key="{job_id}"]').count() == 0
    assert same_document(page)
    assert page.evaluate("window.pwned === undefined")
    assert page.errors == []
    page.context.close()


def test_a_running_job_is_dismissed_from_its_own_page(
    http: httpx.Client, node: Node, browser: Any
) -> None:
    gate = node.gates / secrets.token_hex(8)
    answer = http.post(
        "/processes/gate/execution",
        json={"inputs": {"path": str(gate), "name": "stopped"}},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    job_id = answer.json()["jobID"]
    page = as_user(browser, node)
    page.goto(f"{node.url}/jobs/{job_id}?f=html")
    page.locator("#status", has_text="running").wait_for(timeout=30000)
    page.get_by_role("button", name="Dismiss").click()
    page.wait_for_url("**/jobs?f=html")
    assert page.locator(f'#jobs tr[data-key="{job_id}"]').count() == 0
    assert http.get(f"/jobs/{job_id}", headers=node.auth("ann")).status_code == 404
    assert page.errors == []
    page.context.close()


def test_a_workflow_job_page_shows_its_steps_live(
    http: httpx.Client, node: Node, browser: Any
) -> None:
    gate = node.gates / secrets.token_hex(8)
    workflow = {
        "steps": {
            "wait": {
                "process": "gate",
                "inputs": {"path": str(gate), "name": "Ann", "note": HOSTILE},
            },
            "greet": {
                "process": "hello-world",
                "inputs": {"name": {"step": "wait", "output": "echo"}},
            },
        },
        "outputs": {"echo": "greet"},
    }
    answer = http.post(
        "/processes/workflow/execution",
        json={"inputs": workflow},
        headers={**node.auth("ann"), "Prefer": "respond-async"},
    )
    assert answer.status_code == 201, answer.text
    wid = answer.json()["jobID"]

    page = as_user(browser, node)
    page.goto(f"{node.url}/jobs/{wid}?f=html")
    mark_document(page)
    wait = page.locator('#steps tr[data-key="wait"]')
    greet = page.locator('#steps tr[data-key="greet"]')
    wait.locator(".status", has_text="running").wait_for(timeout=30000)
    # As the server drew it, and as the page's script redrew it from the job's JSON.
    with page.expect_response(lambda r: f"/jobs/{wid}?" in r.url and "f=json" in r.url):
        pass
    assert wait.locator(".message").inner_text() == HOSTILE
    assert page.locator("#steps img").count() == 0
    assert greet.locator(".status").inner_text() == "waiting"
    assert not page.locator("#results").is_visible()

    gate.touch()
    page.locator("#status", has_text="successful").wait_for(timeout=30000)
    for step in (wait, greet):
        step.locator(".status", has_text="successful").wait_for(timeout=30000)
        assert step.locator("progress").get_attribute("value") == "100"
    assert same_document(page)
    assert page.evaluate("window.pwned === undefined")

    # Each step is a job of its own, linked from its row.
    step_job = greet.get_by_role("link").inner_text()
    page.locator("#results").click()
    page.wait_for_url("**/results")
    assert "Hello Ann!" in page.content()
    page.goto(f"{node.url}/jobs/{step_job}?f=html")
    assert page.locator("#status").inner_text() == "successful"
    assert "hello-world" in page.locator("#job").inner_text()
    assert page.errors == []
    page.context.close()
