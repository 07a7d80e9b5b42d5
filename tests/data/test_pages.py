"""The datasets pages in a real Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.data.test_http import Node, make_node

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path, serve: Callable[[Any], str], netcdf_file: Path) -> Iterator[Node]:
    for node in make_node(tmp_path, serve):
        assert node.register("one", [str(netcdf_file)], title="One file").status_code == 201
        yield node


def test_datasets_list_leads_to_a_dataset_page_with_a_quicklook(page: Any, served: Node) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.url + "/")
    page.get_by_role("link", name="Datasets").first.click()
    page.wait_for_url("**/datasets")
    assert page.locator("#datasets tbody tr").count() == 1
    page.get_by_role("link", name="one", exact=True).click()
    page.wait_for_url("**/datasets/one/")
    assert page.locator("h1").inner_text() == "One file"
    rows = page.locator("#variables tbody tr")
    assert {rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())} >= {
        "tas",
        "pr",
        "sst",
    }
    snippet = page.locator("#snippet-xarray").inner_text()
    assert f"{served.url}/datasets/one/zarr/" in snippet
    quicklook = page.locator("#quicklook")
    quicklook.wait_for()
    page.wait_for_function("document.querySelector('#quicklook').complete")
    assert page.evaluate("document.querySelector('#quicklook').naturalWidth") > 100
    assert errors == []


@pytest.mark.parametrize("width", [1400, 1920])
def test_quicklook_lies_within_the_window(
    page: Any, served: Node, tmp_path: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(served.url + "/datasets/one/")
    page.wait_for_function("document.querySelector('#quicklook').complete")
    page.screenshot(path=str(tmp_path / f"dataset-page-{width}.png"), full_page=True)
    box = page.locator("#quicklook").bounding_box()
    assert box is not None
    assert box["width"] > 300  # a readable map, not one squeezed to nothing
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= width
    # Nothing sideways to scroll to: the page fits the window.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
