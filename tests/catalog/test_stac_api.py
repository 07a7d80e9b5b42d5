"""The node's STAC API over HTTP: a real server, items applied from real events.

Expected answers are worked out here from the generated items themselves, so each
assertion checks the API against an independent account of what it should return.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from strato.app import create_app
from strato.catalog.api.stac_api import CONFORMANCE
from strato.catalog.demo.generated_collections import collection_for
from strato.catalog.demo.generator import generate_items
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore, parse_datetime
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.catalog.holding import catalog_holding
from tests.conftest import ThreadedServer
from tests.helpers import assert_problem

MAX_LIMIT = 50
SOURCE = "cmip6:source_id"
EXPERIMENT = "cmip6:experiment_id"


@dataclass
class Node:
    url: str
    http: httpx.Client
    items: list[dict[str, Any]]

    @property
    def stac(self) -> str:
        return f"{self.url}/stac"

    def cmip6(self) -> list[dict[str, Any]]:
        return [it for it in self.items if it["collection"] == "CMIP6"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("stac") / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False, max_limit=MAX_LIMIT),
    )
    items = list(generate_items(30, seed=7)) + list(generate_items(10, project="CORDEX", seed=7))
    ctx = catalog_holding(settings, items)
    store = ItemStore(ctx.sessions)
    # The oracles below count every item: none may be hidden as an older version.
    assert all(store.item_flags(it["collection"], it["id"]) == (True, False) for it in items)
    with (
        ThreadedServer(create_app(settings, context=ctx)) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        yield Node(server.url, http, items)
    ctx.close()


def ids(body: dict[str, Any]) -> list[str]:
    return [f["id"] for f in body["features"]]


def rel(links: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [lk for lk in links if lk["rel"] == name]
    assert len(found) == 1, (name, links)
    return found[0]


def overlaps(item: dict[str, Any], box: list[float]) -> bool:
    west, south, east, north = item["bbox"]
    return west <= box[2] and box[0] <= east and south <= box[3] and box[1] <= north


def in_time(item: dict[str, Any], start: str, end: str) -> bool:
    props = item["properties"]
    first = parse_datetime(props.get("start_datetime") or props["datetime"])
    last = parse_datetime(props.get("end_datetime") or props["datetime"])
    lo, hi = parse_datetime(start), parse_datetime(end)
    assert first
    assert last
    assert lo
    assert hi
    return first <= hi and lo <= last


# --- landing page, conformance, collections ----------------------------------------------


def test_landing_page_links_everything_on_the_node(node: Node) -> None:
    r = node.http.get("/stac/")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "Catalog"
    assert set(body["conformsTo"]) == set(CONFORMANCE)
    links = body["links"]
    assert rel(links, "self")["href"] == f"{node.stac}/"
    assert rel(links, "root")["href"] == f"{node.stac}/"
    assert rel(links, "data")["href"] == f"{node.stac}/collections"
    assert rel(links, "conformance")["href"] == f"{node.stac}/conformance"
    searches = {lk["method"]: lk["href"] for lk in links if lk["rel"] == "search"}
    assert searches == {"GET": f"{node.stac}/search", "POST": f"{node.stac}/search"}
    assert rel(links, "aggregate")["href"] == f"{node.stac}/aggregate"
    assert {"total_count", SOURCE} <= set(rel(links, "aggregate")["aggregations"])
    # Every advertised link answers.
    for link in links:
        if link.get("method", "GET") == "GET":
            assert node.http.get(link["href"]).status_code == 200, link


def test_conformance_lists_exactly_what_is_implemented(node: Node) -> None:
    r = node.http.get("/stac/conformance")
    assert r.status_code == 200
    assert sorted(r.json()["conformsTo"]) == sorted(CONFORMANCE)


def test_public_url_setting_is_the_base_of_links(tmp_path: Any) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        log=LogSettings(access=False),
        public_url="https://node.example/base/",
        catalog=CatalogSettings(consume=False),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    with ThreadedServer(create_app(settings, context=ctx)) as server:
        body = httpx.get(f"{server.url}/stac/").json()
    ctx.close()
    assert rel(body["links"], "self")["href"] == "https://node.example/base/stac/"
    assert rel(body["links"], "data")["href"] == "https://node.example/base/stac/collections"


def test_collections_and_one_collection(node: Node) -> None:
    body = node.http.get("/stac/collections", params={"limit": 10}).json()
    assert sorted(c["id"] for c in body["collections"]) == ["CMIP6", "CORDEX"]
    assert body["numberMatched"] == 2
    assert body["numberReturned"] == 2
    assert rel(body["links"], "self")["href"].startswith(f"{node.stac}/collections")
    one = node.http.get("/stac/collections/CMIP6")
    assert one.status_code == 200
    coll = one.json()
    assert coll["id"] == "CMIP6"
    assert coll["extent"] == collection_for("CMIP6")["extent"]
    assert rel(coll["links"], "self")["href"] == f"{node.stac}/collections/CMIP6"
    assert rel(coll["links"], "root")["href"] == f"{node.stac}/"
    assert rel(coll["links"], "parent")["href"] == f"{node.stac}/"
    assert rel(coll["links"], "items")["href"] == f"{node.stac}/collections/CMIP6/items"


def test_collection_search_by_bbox_q_and_pages(node: Node) -> None:
    # South of every CORDEX domain: only the global CMIP6 collection is there.
    south = node.http.get("/stac/collections", params={"bbox": "-100,-80,-90,-70"}).json()
    assert [c["id"] for c in south["collections"]] == ["CMIP6"]
    named = node.http.get("/stac/collections", params={"q": "CORDEX"}).json()
    assert [c["id"] for c in named["collections"]] == ["CORDEX"]
    first = node.http.get("/stac/collections", params={"limit": 1}).json()
    assert (first["numberReturned"], first["numberMatched"]) == (1, 2)
    second = node.http.get(rel(first["links"], "next")["href"]).json()
    assert second["numberReturned"] == 1
    seen = {first["collections"][0]["id"], second["collections"][0]["id"]}
    assert seen == {"CMIP6", "CORDEX"}
    assert not [lk for lk in second["links"] if lk["rel"] == "next"]
    assert rel(second["links"], "prev")


# --- items ------------------------------------------------------------------------------


def test_items_of_a_collection_page_by_token(node: Node) -> None:
    expected = {it["id"] for it in node.cmip6()}
    seen: list[str] = []
    url: str | None = f"{node.stac}/collections/CMIP6/items?limit=7"
    pages = 0
    while url:
        r = node.http.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/geo+json"
        body = r.json()
        assert body["numberMatched"] == len(expected)
        assert body["numberReturned"] == len(body["features"]) <= 7
        seen += ids(body)
        nxt = [lk for lk in body["links"] if lk["rel"] == "next"]
        url = nxt[0]["href"] if nxt else None
        if url:
            query = parse_qs(urlsplit(url).query)
            assert query["limit"] == ["7"]
            assert query["token"]
        pages += 1
    assert pages == 5
    assert sorted(seen) == sorted(expected)


def test_items_filtered_by_bbox_and_datetime(node: Node) -> None:
    box = [-30.0, 30.0, -20.0, 40.0]
    r = node.http.get(
        "/stac/collections/CORDEX/items", params={"bbox": ",".join(map(str, box)), "limit": 50}
    )
    assert r.status_code == 200
    expected = {it["id"] for it in node.items if it["collection"] == "CORDEX" and overlaps(it, box)}
    assert 0 < len(expected) < 10
    assert set(ids(r.json())) == expected
    window = ("2051-01-01T00:00:00Z", "2052-01-01T00:00:00Z")
    r = node.http.get(
        "/stac/collections/CMIP6/items", params={"datetime": "/".join(window), "limit": 50}
    )
    expected = {it["id"] for it in node.cmip6() if in_time(it, *window)}
    assert 0 < len(expected) < 30
    assert set(ids(r.json())) == expected


def test_one_item_carries_this_nodes_links(node: Node) -> None:
    item = node.cmip6()[3]
    r = node.http.get(f"/stac/collections/CMIP6/items/{item['id']}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert {k: v for k, v in body.items() if k != "links"} == {
        k: v for k, v in item.items() if k != "links"
    }
    links = body["links"]
    assert rel(links, "self")["href"] == f"{node.stac}/collections/CMIP6/items/{item['id']}"
    assert rel(links, "parent")["href"] == f"{node.stac}/collections/CMIP6"
    assert rel(links, "collection")["href"] == f"{node.stac}/collections/CMIP6"
    assert rel(links, "root")["href"] == f"{node.stac}/"
    # The publishing node's links are gone.
    assert all(lk["href"].startswith(node.url) for lk in links)


def test_unknown_collection_and_item_are_404(node: Node) -> None:
    assert_problem(node.http.get("/stac/collections/nope"), 404, "nope")
    assert_problem(node.http.get("/stac/collections/nope/items"), 404, "nope")
    assert_problem(node.http.get("/stac/collections/CMIP6/items/nope"), 404, "nope")
    assert_problem(node.http.get("/stac/collections/nope/queryables"), 404, "nope")
    assert_problem(node.http.get("/stac/collections/nope/aggregations"), 404, "nope")


# --- search -----------------------------------------------------------------------------


def test_search_get_and_post_agree(node: Node) -> None:
    chosen = [it["id"] for it in node.items[::4]]
    box = [0.0, 30.0, 10.0, 40.0]
    window = "2000-01-01T00:00:00Z/2010-01-01T00:00:00Z"
    get = node.http.get(
        "/stac/search",
        params={
            "ids": ",".join(chosen),
            "bbox": ",".join(map(str, box)),
            "datetime": window,
            "limit": 50,
        },
    )
    post = node.http.post(
        "/stac/search", json={"ids": chosen, "bbox": box, "datetime": window, "limit": 50}
    )
    assert get.status_code == post.status_code == 200
    expected = {
        it["id"]
        for it in node.items
        if it["id"] in chosen and overlaps(it, box) and in_time(it, *window.split("/"))
    }
    assert expected
    assert set(ids(get.json())) == set(ids(post.json())) == expected
    assert get.json()["numberMatched"] == post.json()["numberMatched"] == len(expected)
    by_collection = node.http.post("/stac/search", json={"collections": ["CORDEX"], "limit": 50})
    assert by_collection.json()["numberMatched"] == 10


def test_search_next_links_get_keep_params_post_merge_body(node: Node) -> None:
    get = node.http.get("/stac/search", params={"collections": "CMIP6", "limit": 4}).json()
    nxt = rel(get["links"], "next")
    assert nxt["href"].startswith(f"{node.stac}/search?")
    query = parse_qs(urlsplit(nxt["href"]).query)
    assert query["collections"] == ["CMIP6"]
    assert query["limit"] == ["4"]
    page2 = node.http.get(nxt["href"]).json()
    assert not set(ids(page2)) & set(ids(get))
    assert rel(page2["links"], "prev")

    post = node.http.post("/stac/search", json={"collections": ["CMIP6"], "limit": 4}).json()
    link = rel(post["links"], "next")
    assert link["method"] == "POST"
    assert link["merge"] is True
    assert set(link["body"]) == {"token"}
    body = {"collections": ["CMIP6"], "limit": 4, **link["body"]}
    page2 = node.http.post(link["href"], json=body).json()
    assert len(page2["features"]) == 4
    assert not set(ids(page2)) & set(ids(post))


def test_fields_include_and_exclude(node: Node) -> None:
    r = node.http.get(
        "/stac/search",
        params={"collections": "CMIP6", "fields": f"-assets,properties.{SOURCE}", "limit": 3},
    )
    assert r.status_code == 200
    for feature in r.json()["features"]:
        assert "assets" not in feature
        assert {"id", "type", "geometry", "bbox", "links"} <= feature.keys()
        assert set(feature["properties"]) == {"datetime", SOURCE}
    r = node.http.post(
        "/stac/search",
        json={
            "collections": ["CMIP6"],
            "fields": {"include": [EXPERIMENT], "exclude": ["geometry", "links"]},
            "limit": 3,
        },
    )
    for feature in r.json()["features"]:
        assert "geometry" not in feature
        assert "links" not in feature
        assert set(feature["properties"]) == {"datetime", EXPERIMENT}
    whole = node.http.post("/stac/search", json={"limit": 1}).json()["features"][0]
    assert "assets" in whole
    assert len(whole["properties"]) > 5


def test_sortby_get_and_post(node: Node) -> None:
    r = node.http.get(
        "/stac/search",
        params={"collections": "CMIP6", "sortby": f"-properties.{SOURCE}", "limit": 50},
    )
    assert r.status_code == 200
    values = [f["properties"][SOURCE] for f in r.json()["features"]]
    assert len(values) == 30
    assert values == sorted(values, reverse=True)
    r = node.http.post(
        "/stac/search",
        json={
            "collections": ["CMIP6"],
            "sortby": [{"field": SOURCE, "direction": "asc"}, {"field": "id", "direction": "desc"}],
            "limit": 50,
        },
    )
    keys = [(f["properties"][SOURCE], f["id"]) for f in r.json()["features"]]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    for (a_source, a_id), (b_source, b_id) in itertools.pairwise(keys):
        if a_source == b_source:
            assert a_id > b_id


def test_query_extension(node: Node) -> None:
    source = Counter(it["properties"][SOURCE] for it in node.cmip6()).most_common(1)[0][0]
    expected = {it["id"] for it in node.cmip6() if it["properties"][SOURCE] == source}
    query = {SOURCE: {"eq": source}}
    post = node.http.post("/stac/search", json={"query": query, "limit": 50})
    assert post.status_code == 200
    assert set(ids(post.json())) == expected
    get = node.http.get("/stac/search", params={"query": json.dumps(query), "limit": 50})
    assert set(ids(get.json())) == expected


def test_free_text_q(node: Node) -> None:
    target = node.cmip6()[5]
    term = target["properties"][SOURCE]
    for r in (
        node.http.get("/stac/search", params={"q": term, "limit": 50}),
        node.http.post("/stac/search", json={"q": [term], "limit": 50}),
        node.http.post("/stac/search", json={"q": term, "limit": 50}),
    ):
        assert r.status_code == 200, r.text
        found = r.json()["features"]
        assert target["id"] in [f["id"] for f in found]
        assert all(term.lower() in str(f).lower() for f in found)
        assert len(found) < len(node.items)


def test_filter_text_and_json_over_get_and_post(node: Node) -> None:
    source = node.cmip6()[0]["properties"][SOURCE]
    expected = {it["id"] for it in node.cmip6() if it["properties"][SOURCE] == source}
    text = f"\"{SOURCE}\" = '{source}'"
    as_json = {"op": "=", "args": [{"property": SOURCE}, source]}
    answers = [
        node.http.get("/stac/search", params={"filter": text, "limit": 50}),
        node.http.get(
            "/stac/search",
            params={"filter": json.dumps(as_json), "filter-lang": "cql2-json", "limit": 50},
        ),
        node.http.post("/stac/search", json={"filter": as_json, "limit": 50}),
        node.http.post(
            "/stac/search", json={"filter": text, "filter-lang": "cql2-text", "limit": 50}
        ),
        node.http.get("/stac/collections/CMIP6/items", params={"filter": text, "limit": 50}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        assert set(ids(r.json())) == expected


def _matching(node: Node, keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {it["id"] for it in node.items if keep(it["properties"])}


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        # Properties that are neither columns nor facets are read from each item.
        ("size > 500000000", lambda p: p["size"] > 500_000_000),
        ("size BETWEEN 1 AND 500000000", lambda p: 1 <= p["size"] <= 500_000_000),
        ("title LIKE 'CMIP6.ScenarioMIP.%'", lambda p: p["title"].startswith("CMIP6.ScenarioMIP.")),
        ("CASEI(data_node) = CASEI('EAST')", lambda p: p["data_node"].lower() == "east"),
        ("replica = false", lambda p: p["replica"] is False),
        ("NOT (size > 500000000)", lambda p: not p["size"] > 500_000_000),
        # One no item has (the EO properties stac-api-validator tries): absent, null.
        ('"eo:cloud_cover" < 10', lambda p: False),
        ('"eo:cloud_cover" IS NULL', lambda p: True),
        ("mission LIKE 'sentinel%'", lambda p: False),
    ],
)
def test_filters_on_any_property_of_the_items(
    node: Node, text: str, keep: Callable[[dict[str, Any]], bool]
) -> None:
    expected = _matching(node, keep)
    r = node.http.get("/stac/search", params={"filter": text, "limit": MAX_LIMIT})
    assert r.status_code == 200, r.text
    assert set(ids(r.json())) == expected


def test_between_also_in_the_drafts_array_form(node: Node) -> None:
    bounds = ("A", "D")
    forms = [
        {"op": "between", "args": [{"property": SOURCE}, *bounds]},
        {"op": "between", "args": [{"property": SOURCE}, list(bounds)]},
    ]
    expected = _matching(node, lambda p: p.get(SOURCE) is not None and "A" <= p[SOURCE] <= "D")
    for cql2 in forms:
        r = node.http.post("/stac/search", json={"filter": cql2, "limit": MAX_LIMIT})
        assert r.status_code == 200, r.text
        assert set(ids(r.json())) == expected


def test_property_names_that_are_no_json_member_name_are_refused(node: Node) -> None:
    for name in ('a\\"b', "a,b", "{a}", "x" * 200):
        as_json = {"op": "=", "args": [{"property": name}, 1]}
        assert_problem(node.http.post("/stac/search", json={"filter": as_json}), 400, "property")


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        (f"\"{SOURCE}\" LIKE 'CESM%'", lambda v: v.startswith("CESM")),
        (f"\"{SOURCE}\" IN ('CESM2', 'CanESM5')", lambda v: v in ("CESM2", "CanESM5")),
        (f"\"{SOURCE}\" BETWEEN 'A' AND 'D'", lambda v: "A" <= v <= "D"),
        (f"CASEI(\"{SOURCE}\") = CASEI('cesm2')", lambda v: v.lower() == "cesm2"),
    ],
)
def test_declared_cql2_classes_work(node: Node, text: str, keep: Callable[[str], bool]) -> None:
    # advanced-comparison-operators and case-insensitive-comparison are declared.
    expected = {it["id"] for it in node.cmip6() if keep(it["properties"][SOURCE])}
    assert 0 < len(expected) < 30
    r = node.http.get("/stac/collections/CMIP6/items", params={"filter": text, "limit": MAX_LIMIT})
    assert r.status_code == 200, r.text
    assert set(ids(r.json())) == expected


# --- aggregation, queryables ------------------------------------------------------------


def test_aggregate_term_counts(node: Node) -> None:
    r = node.http.get(
        "/stac/aggregate", params={"aggregations": f"{SOURCE},{EXPERIMENT},total_count"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "AggregationCollection"
    by_name = {a["name"]: a for a in body["aggregations"]}
    assert by_name["total_count"]["value"] == len(node.items)
    for name in (SOURCE, EXPERIMENT):
        counted = {b["key"]: b["frequency"] for b in by_name[name]["buckets"]}
        expected = Counter(it["properties"][name] for it in node.cmip6())
        assert counted == dict(expected)


def test_aggregate_post_with_a_search_and_per_collection(node: Node) -> None:
    source = node.cmip6()[0]["properties"][SOURCE]
    chosen = [it for it in node.cmip6() if it["properties"][SOURCE] == source]
    r = node.http.post(
        "/stac/aggregate",
        json={"aggregations": [EXPERIMENT], "query": {SOURCE: {"eq": source}}},
    )
    assert r.status_code == 200
    buckets = {b["key"]: b["frequency"] for b in r.json()["aggregations"][0]["buckets"]}
    assert buckets == dict(Counter(it["properties"][EXPERIMENT] for it in chosen))
    scoped = node.http.get(
        "/stac/collections/CORDEX/aggregate", params={"aggregations": "total_count"}
    )
    assert scoped.json()["aggregations"][0]["value"] == 10
    names = node.http.get("/stac/aggregations").json()["aggregations"]
    assert {"total_count", SOURCE, EXPERIMENT} <= {a["name"] for a in names}


def test_aggregate_rejects_unknown_names(node: Node) -> None:
    assert_problem(
        node.http.get("/stac/aggregate", params={"aggregations": "nonsense"}), 400, "nonsense"
    )
    # Only what was asked for is computed: nothing, if nothing was.
    nothing = node.http.get("/stac/aggregate")
    assert nothing.status_code == 200
    assert nothing.json()["aggregations"] == []


def test_queryables(node: Node) -> None:
    for path in ("/stac/queryables", "/stac/collections/CMIP6/queryables"):
        r = node.http.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/schema+json"
        schema = r.json()
        assert schema["type"] == "object"
        assert SOURCE in schema["properties"]
        assert schema["$id"] == f"{node.url}{path}"


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"bbox": "1,2,3"}, 400, "bbox"),
        ({"bbox": "a,b,c,d"}, 400, "bbox"),
        ({"bbox": "0,50,10,40"}, 400, "bbox"),
        ({"bbox": "0,0,200,10"}, 400, "bbox"),
        ({"datetime": "yesterday"}, 400, "datetime"),
        ({"datetime": "../.."}, 400, "datetime"),
        ({"datetime": "2010-01-01T00:00:00Z/2000-01-01T00:00:00Z"}, 400, "datetime"),
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"filter": f"{SOURCE} = "}, 400, "filter"),
        ({"filter": "{not json", "filter-lang": "cql2-json"}, 400, "filter"),
        ({"filter": "id = 'x'", "filter-lang": "cql3"}, 400, "filter-lang"),
        ({"query": "{not json"}, 400, "query"),
        ({"query": '{"x": 1}'}, 400, "query"),
        ({"intersects": '{"type": "Point"}'}, 400, "intersects"),
        ({"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'}, 400, ""),
    ],
)
def test_bad_search_parameters_are_4xx_problems(
    node: Node, params: dict[str, str], status: int, text: str
) -> None:
    assert_problem(node.http.get("/stac/search", params=params), status, text)


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"bbox": [1, 2, 3]}, 400, "bbox"),
        ({"datetime": "2020-13-01T00:00:00Z"}, 400, "datetime"),
        ({"limit": 0}, 400, "limit"),
        # A bbox in a POST body is a JSON array, not the GET's comma-separated text.
        ({"bbox": "100.0, 0.0, 105.0, 1.0"}, 400, "bbox"),
        ({"bbox": {"west": 0}}, 400, "bbox"),
        ({"filter": {"op": "=", "args": "broken"}}, 400, ""),
        ({"filter": "id = ", "filter-lang": "cql2-text"}, 400, "filter"),
        ({"filter": {"op": "=", "args": [{"property": "id"}, "x"]}, "filter-lang": "x"}, 422, ""),
        ({"sortby": [{"field": "id", "direction": "sideways"}]}, 422, "direction"),
        ({"collections": "CMIP6"}, 422, "collections"),
    ],
)
def test_bad_search_bodies_are_4xx_problems(
    node: Node, body: dict[str, Any], status: int, text: str
) -> None:
    assert_problem(node.http.post("/stac/search", json=body), status, text)


def test_items_route_checks_its_parameters_too(node: Node) -> None:
    assert_problem(
        node.http.get("/stac/collections/CMIP6/items", params={"bbox": "1,2"}), 400, "bbox"
    )
    assert_problem(node.http.get("/stac/collections", params={"offset": "-1"}), 400, "offset")


def test_a_limit_above_the_maximum_is_clamped_to_it(node: Node) -> None:
    # OGC API - Features: a limit beyond what the server allows is not an error, the
    # server answers with at most its maximum (here every item there is).
    everything = len(node.items)
    assert everything < MAX_LIMIT
    for asked in (MAX_LIMIT + 1, 1_000_000):
        for r in (
            node.http.get("/stac/search", params={"limit": str(asked)}),
            node.http.post("/stac/search", json={"limit": asked}),
        ):
            assert r.status_code == 200, r.text
            assert r.json()["numberReturned"] == everything
        r = node.http.get("/stac/collections/CMIP6/items", params={"limit": str(asked)})
        assert r.status_code == 200, r.text
        assert r.json()["numberReturned"] == len(node.cmip6())
        r = node.http.get("/stac/collections", params={"limit": str(asked)})
        assert r.status_code == 200, r.text


def test_the_service_description_comes_with_the_type_its_link_names(node: Node) -> None:
    link = rel(node.http.get("/stac/").json()["links"], "service-desc")
    assert link["type"].startswith("application/vnd.oai.openapi+json;version=")
    r = node.http.get(link["href"], headers={"Accept": link["type"]})
    assert r.status_code == 200
    assert r.headers["content-type"] == link["type"]
    spec = r.json()
    assert link["type"].endswith(f"version={spec['openapi'].rsplit('.', 1)[0]}")
    assert "/stac/search" in spec["paths"]


def test_stac_routes_in_stratos_openapi(node: Node) -> None:
    spec = node.http.get("/openapi.json").json()
    assert spec["info"]["title"] == "strato"
    stac = {path: ops for path, ops in spec["paths"].items() if path.startswith("/stac/")}
    for path in ("/stac/", "/stac/search", "/stac/aggregate", "/stac/queryables"):
        assert path in stac
    for ops in stac.values():
        for op in ops.values():
            assert op["tags"] == ["STAC"]
    assert {"get", "post"} <= set(stac["/stac/search"])
    assert {"put", "patch", "delete"} <= set(
        stac["/stac/collections/{collection_id}/items/{item_id}"]
    )
