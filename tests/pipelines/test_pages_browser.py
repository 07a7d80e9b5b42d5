"""The pipelines pages in a real Chromium: a run submitted from the submission page (its
JSON typed into the editor, a schema error shown as one types, dataFiles filled from a
CSV sample sheet) runs to completion, on the local backend and on Slurm, and its page
shows the tasks reach complete without a reload; the server's 4xx shown naming the field;
a run cancelled from its page; a task's log tail shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.conftest import Node, backend_env
from tests.pipelines.pages_helpers import headers, pages_node

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["local", "slurm"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """The node, its tasks run on the local backend, then on Slurm."""
    root = tmp_path_factory.mktemp(f"pipeline-pages-browser-{request.param}")
    with pages_node(root, backend_env(request.param)) as served:
        yield served


def as_user(browser: Any, node: Node, who: str = "ann") -> Any:
    """A page whose every request, its script's fetches included, carries ``who``'s token;
    a confirmation asked is given."""
    context = browser.new_context(extra_http_headers=headers(node, who))
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


def test_a_run_submitted_from_its_page_runs_to_completion(
    browser: Any, node: Node, tmp_path: Path
) -> None:
    page = as_user(browser, node)
    page.goto(f"{node.url}/pipelines/samples/submit")
    config = {"pipeline": "samples@1.2", "project": "bad name", "email": "ann@example.org"}
    page.fill("#config", json.dumps(config))
    # Checked as typed: the project's pattern and the missing dataFiles, named.
    problems = page.locator("#problems")
    problems.get_by_text("project: does not match").wait_for()
    assert "dataFiles: is required" in problems.inner_text()
    assert "does not match" in page.locator('[data-error-for="project"]').inner_text()
    # The form and the editor in step: the form's field writes into the JSON.
    page.fill('[data-field="project"]', "from_a_browser")
    assert json.loads(page.input_value("#config"))["project"] == "from_a_browser"
    page.fill('[data-field="threads"]', "12")
    problems.get_by_text("threads: is more than 8").wait_for()
    page.fill('[data-field="threads"]', "4")
    # The sample sheet fills dataFiles: two samples, a quoted comma kept.
    sheet = tmp_path / "samples.csv"
    sheet.write_text('rgsm,fastqPath\r\nS1,"/d/S1,a.fq"\r\nS2,/d/S2.fq\r\n')
    page.set_input_files("#sheet", str(sheet))
    page.locator("#sheet-answer", has_text="2 rows of samples.csv").wait_for()
    sent = json.loads(page.input_value("#config"))
    assert sent["dataFiles"] == [
        {"rgsm": "S1", "fastqPath": "/d/S1,a.fq"},
        {"rgsm": "S2", "fastqPath": "/d/S2.fq"},
    ]
    assert sent["threads"] == 4
    assert problems.inner_text().strip() == ""

    page.get_by_role("button", name="Submit the run").click()
    page.wait_for_url("**/pipeline-runs/*")
    page.evaluate("window.sameDocument = true")
    for task in ("prepare", "align-S1", "align-S2", "report"):
        page.locator(f'#tasks tr[data-key="{task}"] td.state', has_text="complete").wait_for(
            timeout=30000
        )
        assert "state-complete" in (
            page.locator(f'#graph g[data-task="{task}"]').get_attribute("class") or ""
        )
    page.locator("#state", has_text="succeeded").wait_for()
    assert page.evaluate("window.sameDocument === true"), "the page was reloaded"
    assert page.locator("#cancel").is_hidden()
    # A task's log tail, picked in the graph.
    page.locator('#graph g[data-task="report"]').click()
    page.locator("#log", has_text="/d/S1,a.fq").wait_for()
    assert page.errors == []


def test_the_servers_refusal_is_shown_naming_the_field(browser: Any, node: Node) -> None:
    page = as_user(browser, node)
    page.goto(f"{node.url}/pipelines/hello/submit")
    # The page's own check is no gate: the server judges, and says which field.
    config = {"pipeline": "hello@1.0", "project": "p", "hpcAccount": "a", "isilonPath": "/i"}
    page.fill("#config", json.dumps(config))
    page.locator("#problems", has_text="email: is required").wait_for()
    page.get_by_role("button", name="Submit the run").click()
    answer = page.locator("#answer")
    answer.get_by_text("Not submitted (400)").wait_for()
    assert "email" in answer.inner_text()
    # Not JSON: said as typed, and not sent.
    page.fill("#config", '{"pipeline": ')
    page.locator("#problems", has_text="not JSON").wait_for()
    assert page.errors == []


def test_a_run_is_cancelled_from_its_page(browser: Any, node: Node) -> None:
    import httpx

    config = {
        "pipeline": "slow",
        "project": "p",
        "email": "a@b",
        "hpcAccount": "x",
        "isilonPath": "/i",
    }
    answer = httpx.post(f"{node.url}/api/v1/new-run/", json=config, headers=headers(node))
    run_id = answer.json()["id"]
    page = as_user(browser, node)
    page.goto(f"{node.url}/pipeline-runs/{run_id}")
    page.locator('#tasks tr[data-key="wait"] td.state', has_text="running").wait_for(timeout=30000)
    page.evaluate("window.sameDocument = true")
    page.get_by_role("button", name="Cancel").click()
    page.locator("#state", has_text="cancelled").wait_for(timeout=30000)
    assert page.locator('#tasks tr[data-key="wait"] td.state').inner_text() == "cancelled"
    assert page.locator("#resume").is_visible()
    assert page.evaluate("window.sameDocument === true")
    assert node.wait(run_id)["state"] == "cancelled"
    assert page.errors == []


def test_the_runs_page_shows_a_new_run_and_its_state_live(browser: Any, node: Node) -> None:
    import httpx

    page = as_user(browser, node)
    page.goto(f"{node.url}/pipeline-runs")
    page.evaluate("window.sameDocument = true")
    config = {
        "pipeline": "hello",
        "project": "live",
        "email": "a@b",
        "hpcAccount": "x",
        "isilonPath": "/i",
    }
    run_id = httpx.post(f"{node.url}/api/v1/new-run/", json=config, headers=headers(node)).json()[
        "id"
    ]
    page.locator(f'#runs tr[data-key="{run_id}"] td.state', has_text="succeeded").wait_for(
        timeout=30000
    )
    assert page.evaluate("window.sameDocument === true")
    assert page.errors == []
