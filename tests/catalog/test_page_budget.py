"""A search page holds at most ``catalog.max_page_bytes`` of items and links the next.

Before, a page held ``limit`` items whatever their size: one 50 MB item made every page
that held it 50 MB. Now a page stops before the item that would take it beyond the budget;
following next (and prev) links still gives every item once, as pystac-client does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pystac_client import Client

from strato.app import create_app
from strato.catalog.demo.generator import generate_items
from strato.catalog.model.item_limits import json_size
from strato.catalog.settings import CatalogSettings
from strato.settings import LogSettings, Settings
from tests.catalog.holding import catalog_holding

BUDGET = 64 * 1024


@contextmanager
def budgeted_node(
    tmp_path: Path, serve: Callable[[Any], str], items: list[dict[str, Any]]
) -> Iterator[str]:
    """A node whose pages hold at most ``BUDGET`` bytes, holding ``items``; its URL."""
    settings = Settings(
        data_dir=tmp_path / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False, max_page_bytes=BUDGET),
    )
    ctx = catalog_holding(settings, items)
    try:
        yield serve(create_app(settings, context=ctx))
    finally:
        ctx.close()


def padded(item: dict[str, Any], size: int) -> dict[str, Any]:
    return {**item, "properties": {**item["properties"], "description": "x" * size}}


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    # Ten items of about 20 KB: three fit in a page, the fourth would not.
    items = [padded(it, 20_000) for it in generate_items(10, seed=11)]
    with budgeted_node(tmp_path, serve, items) as url:
        yield url, items


def pages(http: httpx.Client, first: httpx.Response) -> Iterator[dict[str, Any]]:
    page = first
    while True:
        assert page.status_code == 200, page.text
        body: dict[str, Any] = page.json()
        yield body
        nxt = [link for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            return
        if nxt[0].get("method") == "POST":
            page = http.post(nxt[0]["href"], json={"limit": 10, **nxt[0]["body"]})
        else:
            page = http.get(nxt[0]["href"])


def test_a_page_stops_at_its_byte_budget_and_links_the_rest(
    node: tuple[str, list[dict[str, Any]]],
) -> None:
    url, items = node
    everything = {it["id"] for it in items}
    with httpx.Client(timeout=30) as http:
        for first in (
            http.get(f"{url}/stac/search", params={"limit": 10}),
            http.post(f"{url}/stac/search", json={"limit": 10}),
            http.get(f"{url}/stac/collections/CMIP6/items", params={"limit": 10}),
        ):
            seen: list[str] = []
            for body in pages(http, first):
                features = body["features"]
                assert 1 <= len(features) <= 3, len(features)
                assert sum(json_size(f) for f in features) <= BUDGET + 4_096 * len(features)
                assert len(first.content) < 2 * BUDGET
                assert body["numberMatched"] == 10
                seen += [f["id"] for f in features]
            assert sorted(seen) == sorted(everything)

        # Back from the second page: the first page again.
        first = http.get(f"{url}/stac/search", params={"limit": 10}).json()
        second_href = next(link["href"] for link in first["links"] if link["rel"] == "next")
        second = http.get(second_href).json()
        prev_href = next(link["href"] for link in second["links"] if link["rel"] == "prev")
        back = http.get(prev_href).json()
        assert [f["id"] for f in back["features"]] == [f["id"] for f in first["features"]]


def test_a_stac_client_gets_every_item_through_the_cut_pages(
    node: tuple[str, list[dict[str, Any]]],
) -> None:
    url, items = node
    client = Client.open(f"{url}/stac/")
    found = [item.id for item in client.search(limit=10, max_items=None).items()]
    assert sorted(found) == sorted(it["id"] for it in items)


def test_one_item_larger_than_the_budget_still_makes_a_page(
    tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    big, small = generate_items(2, seed=12)
    with budgeted_node(tmp_path, serve, [padded(big, 2 * BUDGET), small]) as url:
        body = httpx.get(f"{url}/stac/search", params={"limit": 10}, timeout=30).json()
    assert len(body["features"]) == 1
    assert any(link["rel"] == "next" for link in body["links"])


def test_the_default_page_budget_is_8_mib() -> None:
    assert CatalogSettings().max_page_bytes == 8 * 1024 * 1024
