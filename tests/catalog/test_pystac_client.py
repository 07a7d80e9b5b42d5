"""pystac-client, the STAC API client users run, against a node's /stac.

Paging is checked on each database engine: every item exactly once, GET and POST.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses

from strato.app import create_app
from strato.catalog.demo.generator import generate_items
from strato.catalog.settings import CatalogSettings
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.catalog.holding import catalog_holding
from tests.conftest import ThreadedServer

SOURCE = "cmip6:source_id"


def _start(settings: Settings, items: list[dict[str, Any]]) -> tuple[Context, ThreadedServer]:
    ctx = catalog_holding(settings, items)
    return ctx, ThreadedServer(create_app(settings, context=ctx)).__enter__()


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    return list(generate_items(45, seed=11)) + list(generate_items(12, project="CORDEX", seed=11))


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, items: list[dict[str, Any]]
) -> Iterator[Client]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pystac") / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False),
    )
    ctx, server = _start(settings, items)
    yield Client.open(f"{server.url}/stac")
    server.__exit__()
    ctx.close()


def cmip6(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [it for it in items if it["collection"] == "CMIP6"]


def test_client_sees_the_api_it_expects(client: Client) -> None:
    for conformance in (
        ConformanceClasses.CORE,
        ConformanceClasses.ITEM_SEARCH,
        ConformanceClasses.FILTER,
        ConformanceClasses.FIELDS,
        ConformanceClasses.SORT,
        ConformanceClasses.QUERY,
        ConformanceClasses.COLLECTIONS,
        ConformanceClasses.FEATURES,
        ConformanceClasses.COLLECTION_SEARCH,
        ConformanceClasses.TRANSACTION,
    ):
        assert client.conforms_to(conformance), conformance
    assert sorted(c.id for c in client.get_collections()) == ["CMIP6", "CORDEX"]
    assert client.get_collection("CORDEX").id == "CORDEX"


def test_collection_items_through_the_client(client: Client, items: list[dict[str, Any]]) -> None:
    cordex = client.get_collection("CORDEX")
    got = sorted(item.id for item in cordex.get_items())
    assert got == sorted(it["id"] for it in items if it["collection"] == "CORDEX")
    one = items[0]
    fetched = client.get_collection("CMIP6").get_item(one["id"])
    assert fetched is not None
    assert fetched.properties == one["properties"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_yields_every_item_exactly_once(
    client: Client, items: list[dict[str, Any]], method: str
) -> None:
    search = client.search(collections=["CMIP6"], limit=7, method=method)
    got = [item.id for item in search.items()]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(it["id"] for it in cmip6(items))
    assert search.matched() == len(cmip6(items))
    pages = list(client.search(collections=["CMIP6"], limit=7, method=method).pages())
    assert len(pages) == 7


@pytest.mark.parametrize(
    ("method", "lang"),
    [("GET", "cql2-text"), ("POST", "cql2-json"), ("GET", "cql2-json"), ("POST", "cql2-text")],
)
def test_filters_text_and_json(
    client: Client, items: list[dict[str, Any]], method: str, lang: str
) -> None:
    source = Counter(it["properties"][SOURCE] for it in cmip6(items)).most_common(1)[0][0]
    expected = {
        it["id"]
        for it in cmip6(items)
        if it["properties"][SOURCE] == source and it["properties"]["cmip6:table_id"] != "fx"
    }
    as_text = f"\"{SOURCE}\" = '{source}' AND \"cmip6:table_id\" <> 'fx'"
    as_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": SOURCE}, source]},
            {"op": "<>", "args": [{"property": "cmip6:table_id"}, "fx"]},
        ],
    }
    search = client.search(
        filter=as_text if lang == "cql2-text" else as_json,
        filter_lang=lang,
        method=method,
        limit=5,
    )
    assert {item.id for item in search.items()} == expected
    assert len(expected) > 1


def test_fields_sortby_and_query(client: Client, items: list[dict[str, Any]]) -> None:
    slim = next(client.search(collections=["CMIP6"], fields=["-assets"], limit=3).items_as_dicts())
    assert "assets" not in slim
    assert "properties" in slim
    ordered = [
        item.properties[SOURCE]
        for item in client.search(
            collections=["CMIP6"], sortby=f"-properties.{SOURCE}", limit=10
        ).items()
    ]
    assert len(ordered) == len(cmip6(items))
    assert ordered == sorted(ordered, reverse=True)
    source = cmip6(items)[0]["properties"][SOURCE]
    matched = {item.id for item in client.search(query={SOURCE: {"eq": source}}, limit=10).items()}
    assert matched == {it["id"] for it in cmip6(items) if it["properties"][SOURCE] == source}


def test_collection_search_through_the_client(client: Client) -> None:
    found = client.collection_search(q="CORDEX", limit=1)
    assert [c["id"] for c in found.collections_as_dicts()] == ["CORDEX"]
    everything = client.collection_search(limit=1)
    assert sorted(c["id"] for c in everything.collections_as_dicts()) == ["CMIP6", "CORDEX"]


def test_paging_on_each_database(database_url: str, tmp_path: Path) -> None:
    items = list(generate_items(23, seed=5))
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=SecretStr(database_url),
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False),
    )
    ctx, server = _start(settings, items)
    try:
        client = Client.open(f"{server.url}/stac")
        for method in ("GET", "POST"):
            got = [item.id for item in client.search(limit=4, method=method).items()]
            assert sorted(got) == sorted(it["id"] for it in items)
    finally:
        server.__exit__()
        ctx.close()
