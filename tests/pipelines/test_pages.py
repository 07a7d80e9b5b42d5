"""The pipelines pages as HTML over HTTP, as a browser without JavaScript gets them:
markup in a manifest, a schema or a run's config drawn as text, links between the pages,
a run's task graph drawn on the server, a reload while a run is active, an .xlsx sample
sheet read into rows and a file that is none refused with a 4xx naming it."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pipelines.conftest import Node
from tests.pipelines.pages_helpers import HOSTILE, headers, pages_node

RELOAD = '<noscript><meta http-equiv="refresh"'


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with pages_node(tmp_path_factory.mktemp("pipeline-pages")) as served:
        yield served


def html(node: Node, path: str, who: str = "ann") -> str:
    page = httpx.get(node.url + path, headers=headers(node, who), timeout=30)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    return page.text


def test_the_nav_and_the_pipelines_list(node: Node) -> None:
    home = html(node, "/")
    assert '<a href="/pipelines">Pipelines</a>' in home
    page = html(node, "/pipelines")
    for name in ("hello", "slow", "samples", "marked"):
        assert f'href="{node.url}/pipelines/{name}"' in page
        assert f'href="{node.url}/pipelines/{name}/submit"' in page
    assert f'href="{node.url}/pipelines/samples?version=1.2"' in page


def test_markup_in_a_manifest_and_a_schema_stays_text(node: Node) -> None:
    about = html(node, "/pipelines/marked")
    submit = html(node, "/pipelines/marked/submit")
    for page in (about, submit):
        assert HOSTILE not in page
        assert "<img src=x" not in page
    # The default's value, the description and the enum drawn escaped.
    assert "&lt;img src=x onerror=" in about
    assert 'title="&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;"' in submit
    # The schema for the page's script: JSON whose '<' cannot end the script element.
    assert '<script type="application/json" id="schema">' in submit
    assert "\\u003cimg src=x" in submit


def test_a_pipeline_page_lists_its_fields_and_versions(node: Node) -> None:
    page = html(node, "/pipelines/samples")
    assert "<strong>1.2</strong>" in page
    for field in ("project", "email", "threads", "genome", "dataFiles"):
        assert f'<tr data-key="{field}"><td><code>{field}</code></td>' in page
    assert "who is told" in page
    # A pipeline without a schema: Centro's required fields.
    hello = html(node, "/pipelines/hello")
    for field in ("email", "hpcAccount", "isilonPath", "pipeline", "project"):
        assert f'<tr data-key="{field}">' in hello
    assert "Centro" in hello
    missing = httpx.get(f"{node.url}/pipelines/nothing", headers=headers(node))
    assert missing.status_code == 404
    assert "nothing" in missing.json()["detail"]
    version = httpx.get(f"{node.url}/pipelines/samples?version=9", headers=headers(node))
    assert version.status_code == 404
    assert "1.2" in version.json()["detail"]


def test_the_submission_page_starts_with_the_required_fields(node: Node) -> None:
    page = html(node, "/pipelines/samples/submit")
    assert f'data-new-run="{node.url}/api/v1/new-run/"' in page
    # The editor's text, escaped as any text is.
    assert "&#34;pipeline&#34;: &#34;samples@1.2&#34;" in page
    assert "&#34;dataFiles&#34;: []" in page
    assert 'data-field="threads" data-type="integer"' in page
    assert "<option value='\"grch38\"'>grch38</option>" in page
    assert '<script src="/static/pipelines.js" defer></script>' in page


def test_a_run_page_draws_its_graph_escapes_its_config_and_stops_reloading(
    node: Node,
) -> None:
    config = {
        "pipeline": "hello@1.0",
        "project": HOSTILE,
        "email": "ann@example.org",
        "hpcAccount": "lab",
        "isilonPath": "/isilon/x",
        "samples": ["a", "b"],
    }
    answer = httpx.post(f"{node.url}/api/v1/new-run/", json=config, headers=headers(node))
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    page = html(node, f"/pipeline-runs/{run_id}")
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=" in page
    for task in ("greet", "count-a", "count-b", "done"):
        assert f'data-task="{task}"' in page
        assert f'data-key="{task}" data-state=' in page
    assert page.count("<path d=") == 5  # greet->count-a, greet->count-b, 3 into done
    assert 'data-parent="greet" data-child="count-a"' in page

    listed = html(node, "/pipeline-runs")
    assert f'href="{node.url}/pipeline-runs/{run_id}"' in listed
    assert HOSTILE not in listed

    node.wait(run_id)
    ended = html(node, f"/pipeline-runs/{run_id}")
    assert RELOAD not in ended
    assert ended.count('<td class="state">complete</td>') == 4
    # Another user's run is no run of theirs.
    other = httpx.get(f"{node.url}/pipeline-runs/{run_id}", headers=headers(node, "bob"))
    assert other.status_code == 404


def test_an_active_run_page_reloads_without_script(node: Node) -> None:
    config = {
        "pipeline": "slow",
        "project": "p",
        "email": "a@b",
        "hpcAccount": "x",
        "isilonPath": "/i",
    }
    answer = httpx.post(f"{node.url}/api/v1/new-run/", json=config, headers=headers(node))
    run_id = answer.json()["id"]
    try:
        page = html(node, f"/pipeline-runs/{run_id}")
        assert RELOAD in page
        assert '<button type="button" id="cancel"' in page
    finally:
        httpx.post(f"{node.url}/api/v1/runs/{run_id}/cancel", headers=headers(node))


def xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_sheet_is_read_into_rows(node: Node) -> None:
    data = xlsx([["rgsm", "fastqPath", "lane"], ["S1", "/d/S1.fq", 1], [], ["S2", "/d/S2.fq"]])
    answer = httpx.post(f"{node.url}/pipelines/sheet", content=data, headers=headers(node))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "columns": ["rgsm", "fastqPath", "lane"],
        "rows": [
            {"rgsm": "S1", "fastqPath": "/d/S1.fq", "lane": 1},
            {"rgsm": "S2", "fastqPath": "/d/S2.fq"},
        ],
    }


def test_what_is_no_workbook_is_a_4xx(node: Node, tmp_path: Path) -> None:
    def post(data: bytes) -> httpx.Response:
        return httpx.post(f"{node.url}/pipelines/sheet", content=data, headers=headers(node))

    text = post(b"rgsm,fastqPath\nS1,/x\n")
    assert text.status_code == 400
    assert "sheet" in text.json()["detail"]
    assert post(b"").status_code == 400
    # A zip that would inflate past the bound: refused before it is inflated.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/big.xml", b"\0" * (65 << 20))
    answer = post(bomb.getvalue())
    assert answer.status_code == 400
    assert "inflates" in answer.json()["detail"]
    assert post(b"x" * ((4 << 20) + 1)).status_code == 413
    # Submitting needs the run scope: no credentials, no sheet read.
    assert httpx.post(f"{node.url}/pipelines/sheet", content=b"x").status_code == 401
