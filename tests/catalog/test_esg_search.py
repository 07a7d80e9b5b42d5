"""The legacy ESGF search, through a real server: esgf-pyclient, and raw queries on every DB."""

from __future__ import annotations

import copy
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyesgf.search import SearchConnection
from pyesgf.search.constraints import not_equals

from strato.app import create_app
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event, replication_event, retraction_event
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.helpers import assert_problem

WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}
PREFIXES = ("cmip6:", "cordex:")


@dataclass
class Node:
    url: str
    store: ItemStore
    items: list[dict[str, Any]]

    def get(self, query: str | list[tuple[str, str]]) -> httpx.Response:
        path = "/esg-search/search"
        if isinstance(query, str):
            return httpx.get(f"{self.url}{path}?{query}", timeout=30)
        return httpx.get(f"{self.url}{path}", params=query, timeout=30)

    def ok(self, query: str | list[tuple[str, str]]) -> dict[str, Any]:
        r = self.get(query)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def catalog_items() -> list[dict[str, Any]]:
    items = list(generate_items(120, seed=11)) + list(generate_items(40, project="CORDEX", seed=11))
    # A second version of one dataset, so latest=false has something to find.
    old = copy.deepcopy(items[0])
    old["id"] = old["properties"]["base_id"] + ".v20000101"
    old["properties"]["version"] = "20000101"
    return [old, *items]


def start_node(settings: Settings, serve: Callable[[Any], str]) -> Iterator[Node]:
    ctx = Context.open(settings)
    ctx.migrate()
    store = ItemStore(ctx.sessions)
    items = catalog_items()
    outcomes = apply_events(
        store, [create_event(it["collection"], it, requester=WHO) for it in items]
    )
    assert {o.status for o in outcomes} == {"applied"}
    # The old version came first, so the newer one took "latest" from it.
    items[0]["properties"]["latest"] = False
    url = serve(create_app(settings, context=ctx))
    yield Node(url, store, items)
    ctx.close()


def node_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        log=LogSettings(access=False),
        # Events are applied here directly; the node's own consumer is not needed.
        catalog=CatalogSettings(consume=False),
        node_name="test-index",
    )


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from start_node(node_settings(tmp_path), serve)


@pytest.fixture
def any_db_node(tmp_path: Path, serve: Callable[[Any], str], database_url: str) -> Iterator[Node]:
    yield from start_node(node_settings(tmp_path, database_url), serve)


# --- what the answers should be, computed from the items themselves -----------------------


def values(item: dict[str, Any], name: str) -> list[str]:
    props = item["properties"]
    found: list[str] = []
    for prop in (name, *(p + name for p in PREFIXES)):
        if prop == name and name != "project":
            continue
        value = props.get(prop)
        if value is not None:
            found += [str(v) for v in (value if isinstance(value, list) else [value])]
    return found


def matching(items: Iterable[dict[str, Any]], **wanted: list[str]) -> list[dict[str, Any]]:
    return [it for it in items if all(set(values(it, k)) & set(v) for k, v in wanted.items())]


def counts(items: Iterable[dict[str, Any]], name: str) -> dict[str, int]:
    return dict(Counter(v for it in items for v in values(it, name)))


def solr_counts(flat: list[Any]) -> dict[str, int]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def common(items: list[dict[str, Any]], name: str, n: int = 1) -> list[str]:
    return [v for v, _ in Counter(v for it in items for v in values(it, name)).most_common(n)]


# --- esgf-pyclient ------------------------------------------------------------------------


def test_pyesgf_hit_count_facet_counts_and_paging(node: Node) -> None:
    cmip6 = [it for it in node.items if it["collection"] == "CMIP6"]
    variable = common(cmip6, "variable_id")[0]
    expected = matching(node.items, project=["CMIP6"], variable_id=[variable])
    assert len(expected) >= 3

    conn = SearchConnection(node.url + "/esg-search", distrib=False)
    ctx = conn.new_context(project="CMIP6", variable_id=variable, facets="source_id,experiment_id")
    assert ctx.hit_count == len(expected)
    assert ctx.facet_counts["source_id"] == counts(expected, "source_id")
    assert ctx.facet_counts["experiment_id"] == counts(expected, "experiment_id")

    # Pages of 2: the client pages with offset and limit until the hits run out.
    results = ctx.search(batch_size=2)
    assert len(results) == len(expected)
    seen = [r.dataset_id for r in results]
    assert len(seen) == len(set(seen))
    by_id = {it["id"]: it for it in expected}
    assert {s.split("|")[0] for s in seen} == set(by_id)
    first = results[0]
    item = by_id[first.json["instance_id"]]
    assert first.dataset_id == f"{item['id']}|{item['properties']['data_node']}"
    assert first.number_of_files == len(item["assets"])
    assert first.index_node == "test-index"
    assert first.json["master_id"] == item["properties"]["base_id"]
    assert first.json["variable_id"] == [variable]
    assert first.json["size"] == item["properties"]["size"]
    assert first.json["url"][0].endswith("|application/geo+json|STAC")
    stac_url = first.urls["STAC"][0][0]
    assert stac_url == f"{node.url}/stac/collections/CMIP6/items/{item['id']}"


def test_pyesgf_or_within_a_facet_and_negation(node: Node) -> None:
    cmip6 = [it for it in node.items if it["collection"] == "CMIP6"]
    a, b = common(cmip6, "variable_id", 2)
    conn = SearchConnection(node.url + "/esg-search", distrib=False)

    both = conn.new_context(project="CMIP6", variable_id=[a, b], facets="variable_id")
    expected = matching(node.items, project=["CMIP6"], variable_id=[a, b])
    assert both.hit_count == len(expected)
    assert both.facet_counts["variable_id"] == counts(expected, "variable_id")

    source = common(expected, "source_id")[0]
    narrowed = both.constrain(source_id=source)
    expected_narrowed = matching(expected, source_id=[source])
    assert narrowed.hit_count == len(expected_narrowed)
    got = {r.json["instance_id"] for r in narrowed.search(batch_size=50)}
    assert got == {it["id"] for it in expected_narrowed}

    without = conn.new_context(project="CMIP6", variable_id=not_equals(a), facets="variable_id")
    expected_without = [it for it in cmip6 if a not in values(it, "variable_id")]
    assert without.hit_count == len(expected_without)
    assert a not in without.facet_counts["variable_id"]


def test_pyesgf_lists_the_files_of_a_dataset(node: Node) -> None:
    item = next(it for it in node.items[1:] if len(it["assets"]) >= 2)
    # A replica of the first file, announced the way ESGF announces them.
    key = next(iter(item["assets"]))
    replica = {"href": "https://mirror.example/" + key, "type": "application/netcdf"}
    [outcome] = apply_events(
        node.store,
        [
            replication_event(
                item["collection"], item["id"], {key: {"mirror": replica}}, requester=WHO
            )
        ],
    )
    assert outcome.status == "applied", outcome

    conn = SearchConnection(node.url + "/esg-search", distrib=False)
    [dataset] = list(conn.new_context(instance_id=item["id"]).search())
    files = list(dataset.file_context().search())
    assert sorted(f.filename for f in files) == sorted(item["assets"])
    for f in files:
        asset = item["assets"][f.filename]
        assert f.size == asset["file:size"]
        assert f.checksum_type == "SHA256"
        assert f.checksum == asset["file:checksum"][4:]
        assert f.download_url == asset["href"]
        assert f.tracking_id == next(v for k, v in asset.items() if k.endswith(":tracking_id"))
    mirrored = next(f for f in files if f.filename == key)
    assert [u for u, _ in mirrored.urls["HTTPServer"]] == [
        item["assets"][key]["href"],
        replica["href"],
    ]


def drs_path(template: str, doc: dict[str, Any]) -> str:
    """A record's directory from its ``directory_format_template_``, as ESGF clients
    (intake-esgf, esgpull) fill it: each name's value, the first of a list; no root."""
    parts = re.findall(r"%\((\w+)\)s", template)
    version = "v" + doc["version"] if doc["type"] == "Dataset" else doc["dataset_id"]
    values = {**doc, "version": version.split("|")[0].split(".")[-1]}
    return "/".join(
        str(values[p][0] if isinstance(values[p], list) else values[p])
        for p in parts
        if p != "root"
    )


def test_pyesgf_records_carry_the_fields_of_esgf_index_nodes(node: Node) -> None:
    item = next(
        it for it in node.items[1:] if it["collection"] == "CMIP6" and len(it["assets"]) >= 2
    )
    conn = SearchConnection(node.url + "/esg-search", distrib=False)
    [dataset] = list(conn.new_context(instance_id=item["id"]).search())
    doc = dataset.json
    drs = item["id"].split(".")
    # As an ESGF index node answers for a CMIP6 dataset: facets are lists of strings, the
    # record's own fields scalars.
    assert doc["activity_drs"] == [drs[1]]
    assert doc["mip_era"] == ["CMIP6"]
    assert doc["project"] == ["CMIP6"]
    assert doc["variable"] == doc["variable_id"] == [drs[7]]
    assert doc["experiment_title"] == [item["properties"]["cmip6:experiment"]]
    assert doc["dataset_id_template_"] == [
        "%(mip_era)s.%(activity_drs)s.%(institution_id)s.%(source_id)s.%(experiment_id)s."
        "%(member_id)s.%(table_id)s.%(variable_id)s.%(grid_label)s"
    ]
    [template] = doc["directory_format_template_"]
    assert template.startswith("%(root)s/%(mip_era)s/%(activity_drs)s/")
    assert drs_path(template, doc) == item["id"].replace(".", "/")
    assert isinstance(doc["data_node"], str)
    assert isinstance(doc["index_node"], str)
    assert doc["version"] == drs[-1][1:]
    assert isinstance(doc["_version_"], int)
    assert doc["_version_"] > 0
    assert doc["score"] == 1.0
    assert doc["number_of_aggregations"] == 0

    files = list(dataset.file_context().search())
    assert len(files) == len(item["assets"])
    for f in files:
        asset = item["assets"][f.filename]
        fdoc = f.json
        assert fdoc["type"] == "File"
        assert fdoc["dataset_id"] == dataset.dataset_id
        assert fdoc["activity_drs"] == [drs[1]]
        assert fdoc["project"] == ["CMIP6"]
        assert fdoc["directory_format_template_"] == [template]
        # Where the file is in ESGF's directory structure, as clients place it locally.
        assert f"{drs_path(template, fdoc)}/{f.filename}" == asset["file:local_path"]
        assert f.checksum == asset["file:checksum"][4:]
        assert f.size == asset["file:size"]
        assert f.download_url == asset["href"]
        assert f.urls["HTTPServer"] == [(asset["href"], "application/netcdf")]
        assert f.opendap_url is None
        assert isinstance(fdoc["_version_"], int)


def test_pyesgf_aggregations_of_datasets(node: Node) -> None:
    conn = SearchConnection(node.url + "/esg-search", distrib=False)
    # A dataset of files only has no aggregation.
    plain = node.items[1]
    [dataset] = list(conn.new_context(instance_id=plain["id"]).search())
    aggregations = dataset.aggregation_context()
    assert aggregations.hit_count == 0
    assert list(aggregations.search()) == []

    # A dataset served whole as Zarr (as strato.data publishes them): each store is an
    # aggregation of the dataset, not a file.
    served = copy.deepcopy(plain)
    served["id"] = plain["properties"]["base_id"] + ".v29990101"
    served["properties"]["version"] = "29990101"
    zarr = {
        "href": f"{node.url}/datasets/demo/zarr/",
        "type": "application/vnd+zarr",
        "title": "processed Zarr",
        "roles": ["data", "zarr", "https"],
    }
    served["assets"] = {**plain["assets"], "zarr": zarr}
    [outcome] = apply_events(
        node.store, [create_event(served["collection"], served, requester=WHO)]
    )
    assert outcome.status == "applied", outcome

    [dataset] = list(conn.new_context(instance_id=served["id"]).search())
    assert dataset.number_of_files == len(plain["assets"])
    assert dataset.json["number_of_aggregations"] == 1
    assert "Zarr" in dataset.json["access"]
    [aggregation] = list(dataset.aggregation_context().search())
    assert aggregation.json["type"] == "Aggregation"
    assert aggregation.json["dataset_id"] == dataset.dataset_id
    assert aggregation.aggregation_id.endswith(f"|{served['properties']['data_node']}")
    assert aggregation.urls["Zarr"] == [(zarr["href"], "application/vnd+zarr")]
    files = list(dataset.file_context().search())
    assert sorted(f.filename for f in files) == sorted(plain["assets"])


# --- raw queries, on SQLite, PostgreSQL and MariaDB -----------------------------------------


def test_constraints_facets_and_flags_on_every_database(any_db_node: Node) -> None:
    node = any_db_node
    items = node.items
    # Bare names cover both projects: source_id counts CMIP6 models and CORDEX RCMs alike.
    body = node.ok("limit=0&facets=project,source_id,variable_id")
    assert body["response"]["numFound"] == len(items)
    assert body["response"]["docs"] == []
    fields = body["facet_counts"]["facet_fields"]
    assert solr_counts(fields["project"]) == {"CMIP6": 121, "CORDEX": 40}
    assert solr_counts(fields["source_id"]) == counts(items, "source_id")
    assert solr_counts(fields["variable_id"]) == counts(items, "variable_id")
    # Solr lists values in lexical order, each followed by its count.
    assert fields["source_id"][::2] == sorted(fields["source_id"][::2])

    a, b = common(items, "variable_id", 2)
    source = common(matching(items, variable_id=[a, b]), "source_id")[0]
    expected = [
        it for it in matching(items, variable_id=[a, b]) if source not in values(it, "source_id")
    ]
    # A comma list is an OR, like repeating the facet; "!=" excludes.
    body = node.ok(f"variable_id={a},{b}&source_id!={source}&limit=500&fields=instance_id")
    assert body["response"]["numFound"] == len(expected)
    assert {d["instance_id"] for d in body["response"]["docs"]} == {it["id"] for it in expected}
    assert all(d.keys() == {"instance_id"} for d in body["response"]["docs"])
    same = node.ok([("variable_id", a), ("variable_id", b), ("source_id!", source)])
    assert same["response"]["numFound"] == len(expected)

    old = items[0]
    not_latest = node.ok("latest=false&limit=50")
    assert [d["instance_id"] for d in not_latest["response"]["docs"]] == [old["id"]]
    assert not_latest["response"]["docs"][0]["latest"] is False
    assert node.ok("latest=true&limit=0")["response"]["numFound"] == len(items) - 1
    assert node.ok("retracted=true&limit=0")["response"]["numFound"] == 0

    # master_id finds both versions of the dataset; version one of them.
    both = node.ok(f"master_id={old['properties']['base_id']}")
    assert both["response"]["numFound"] == 2
    one = node.ok(f"master_id={old['properties']['base_id']}&version=v20000101")
    assert [d["version"] for d in one["response"]["docs"]] == ["20000101"]


def test_retracted_items_and_replica_flag(node: Node) -> None:
    item = node.items[5]
    [outcome] = apply_events(
        node.store, [retraction_event(item["collection"], item["id"], requester=WHO)]
    )
    assert outcome.status == "applied", outcome
    body = node.ok("retracted=true")
    [doc] = body["response"]["docs"]
    assert doc["instance_id"] == item["id"]
    assert doc["retracted"] is True
    assert doc["latest"] is False
    assert doc["number_of_files"] == 0
    assert node.ok("retracted=false&limit=0")["response"]["numFound"] == len(node.items) - 1
    # Replicas are alternates of a record's files here, never records of their own.
    assert node.ok("replica=true&limit=0")["response"]["numFound"] == 0
    assert node.ok("replica=False&limit=0")["response"]["numFound"] == len(node.items)


def test_paging_with_offset_and_the_solr_envelope(node: Node) -> None:
    project = "CORDEX"
    expected = {it["id"] for it in node.items if it["collection"] == project}
    seen: list[str] = []
    for offset in range(0, 60, 15):
        body = node.ok(f"project={project}&limit=15&offset={offset}&format=application/solr%2Bjson")
        assert body["response"]["start"] == offset
        assert body["response"]["numFound"] == len(expected)
        seen += [d["instance_id"] for d in body["response"]["docs"]]
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected

    header = body["responseHeader"]
    assert header["status"] == 0
    assert isinstance(header["QTime"], int)
    assert header["params"]["start"] == "45"
    assert header["params"]["rows"] == "15"
    assert 'project:("CORDEX")' in header["params"]["fq"]
    # The trailing-slash form is the same search.
    again = httpx.get(f"{node.url}/esg-search/search/?project={project}&limit=0", timeout=30)
    assert again.json()["response"]["numFound"] == len(expected)

    doc = node.ok(f"project={project}&limit=1")["response"]["docs"][0]
    item = next(it for it in node.items if it["id"] == doc["instance_id"])
    props = item["properties"]
    assert doc["id"] == f"{item['id']}|{props['data_node']}"
    assert doc["type"] == "Dataset"
    assert doc["domain_id"] == [props["cordex:domain_id"]]
    assert doc["datetime_start"] == props["start_datetime"]
    assert doc["datetime_stop"] == props["end_datetime"]
    assert (doc["west_degrees"], doc["north_degrees"]) == (item["bbox"][0], item["bbox"][3])


def test_cordex_records_place_files_by_their_drs(node: Node) -> None:
    item = next(it for it in node.items if it["collection"] == "CORDEX")
    [doc] = node.ok(f"instance_id={item['id']}")["response"]["docs"]
    [template] = doc["directory_format_template_"]
    assert drs_path(template, doc) == item["id"].replace(".", "/")
    assert doc["project"] == ["CORDEX"]
    assert doc["domain_id"] == [item["properties"]["cordex:domain_id"]]
    files = node.ok([("type", "File"), ("dataset_id", doc["id"]), ("limit", "100")])
    docs = files["response"]["docs"]
    assert sorted(d["title"] for d in docs) == sorted(item["assets"])
    for d in docs:
        local_path = item["assets"][d["title"]]["file:local_path"]
        assert f"{drs_path(template, d)}/{d['title']}" == local_path


def test_free_text_time_and_all_facets(node: Node) -> None:
    target = node.items[3]
    body = node.ok([("query", target["id"])])
    assert target["id"] in {d["instance_id"] for d in body["response"]["docs"]}
    # Solr's field:value in the query text is a constraint.
    source = values(target, "source_id")[0]
    by_field = node.ok([("query", f"source_id:{source}"), ("limit", "0")])
    assert by_field["response"]["numFound"] == len(matching(node.items, source_id=[source]))
    by_id = node.ok([("query", f"instance_id:{target['id']}")])
    assert [d["instance_id"] for d in by_id["response"]["docs"]] == [target["id"]]

    # Data overlapping the 1850s: the items whose time range touches them.
    expected = [
        it
        for it in node.items
        if it["properties"]["start_datetime"] <= "1859-12-31T23:59:59Z"
        and it["properties"]["end_datetime"] >= "1850-01-01T00:00:00Z"
    ]
    body = node.ok("start=1850-01-01T00:00:00Z&end=1859-12-31T23:59:59Z&limit=0")
    assert body["response"]["numFound"] == len(expected)

    everything = node.ok("limit=0&facets=*")["facet_counts"]["facet_fields"]
    assert {"project", "source_id", "domain_id", "table_id", "cf_standard_name"} <= set(everything)
    assert solr_counts(everything["table_id"]) == counts(node.items, "table_id")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("limit=10001", "'limit' must be within 0..10000"),
        ("limit=ten", "'limit' is a whole number"),
        ("offset=-1", "'offset' must be within"),
        ("format=application/xml", "'format' is application/solr+json"),
        ("type=Collection", "'type' is Dataset, File or Aggregation"),
        ("type=File&project=CMIP6", "dataset_id"),
        ("type=Aggregation&project=CMIP6", "dataset_id"),
        ("type=File&tracking_id=hdl:21.14100/x", "not found by tracking_id"),
        ("latest=perhaps", "'latest' is true or false"),
        ("replica=2x", "'replica' is true or false"),
        ("colour=blue", "unknown facet 'colour'"),
        ("colour!=blue", "unknown facet 'colour'"),
        ("facets=project,flavour", "unknown facet 'flavour'"),
        ("query=flavour:sweet", "unknown facet 'flavour'"),
        ("query=%2B%2B%2B", "'query': '+++' has no word"),
        ("variable_id=", "'variable_id' has no value"),
        ("limit=1&limit=2", "'limit' is given more than once"),
        ("latest!=true", "'latest' cannot be negated"),
        ("start=yesterday", "'start' is a date-time"),
        ("start=2000-01-01&end=1990-01-01", "'start' is after 'end'"),
        ("bbox=1,2,3", "'bbox' is [west,south,east,north]"),
        ("from=yesterday", "'from' is a date-time"),
        ("from=2021-01-01&to=2020-01-01", "'from' is after 'to'"),
    ],
)
def test_bad_parameters_are_400_problems_naming_them(node: Node, query: str, says: str) -> None:
    assert_problem(node.get(query), 400, says)


def test_from_and_to_find_what_the_node_indexed_in_a_time_range(node: Node) -> None:
    # Index times are whole seconds: what was indexed before the cut is a second older.
    time.sleep(1.1)
    cut = datetime.now(UTC).replace(microsecond=0)
    newer = list(generate_items(3, seed=99))
    outcomes = apply_events(node.store, [create_event("CMIP6", it, requester=WHO) for it in newer])
    assert {o.status for o in outcomes} == {"applied"}
    stamp = cut.isoformat().replace("+00:00", "Z")

    # As ESGF's search API documents them (esgf-pyclient's from_timestamp is start, the
    # data's time range).
    body = node.ok(f"project=CMIP6&from={stamp}&limit=10")
    assert body["response"]["numFound"] == 3
    docs = body["response"]["docs"]
    assert {d["instance_id"] for d in docs} == {it["id"] for it in newer}
    assert all(d["_timestamp"] >= stamp for d in docs)
    # timestamp stays the dataset's own (the publisher's "updated").
    updated = {it["id"]: it["properties"]["updated"] for it in newer}
    assert all(d["timestamp"] == updated[d["instance_id"]] for d in docs)

    before = (cut - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    old = node.ok(f"to={before}&limit=0")["response"]["numFound"]
    assert old == len(node.items)
    later = (cut + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert node.ok(f"from={stamp}&to={later}&limit=0")["response"]["numFound"] == 3


def test_pyesgf_sees_a_bad_parameter_as_an_error(node: Node) -> None:
    conn = SearchConnection(node.url + "/esg-search", distrib=False)
    ctx = conn.new_context(colour="blue")
    with pytest.raises(Exception, match=r"Invalid query parameter\(s\): colour"):
        _ = ctx.hit_count
