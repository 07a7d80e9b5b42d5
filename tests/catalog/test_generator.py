"""Generated CMIP6/CORDEX records: DRS ids, vocabulary consistency, determinism, valid STAC."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Any

import pystac
import pytest
from pystac.validation import validate_dict

from strato.catalog.demo import vocab, vocab_cordex
from strato.catalog.demo.generated_collections import collection_for
from strato.catalog.demo.generator import generate_items
from strato.errors import InvalidInput

CMIP6_ID = re.compile(r"^CMIP6(\.[A-Za-z0-9-]+){8}\.v[0-9]{8}$")
CORDEX_ID = re.compile(r"^CORDEX(\.[A-Za-z0-9-]+){10}\.v[0-9]{8}$")
MEMBER = re.compile(r"^(s(?P<sub>\d{4})-)?r(?P<r>\d+)i1p(?P<p>\d+)f(?P<f>\d+)$")
CHECKSUM = re.compile(r"^1220[0-9a-f]{64}$")
CMIP6_FILE = re.compile(
    r"^(?P<var>[A-Za-z0-9]+)_(?P<table>[A-Za-z0-9]+)_(?P<source>[A-Za-z0-9-]+)_"
    r"(?P<exp>[A-Za-z0-9-]+)_(?P<member>[A-Za-z0-9-]+)_(?P<grid>g[a-z0-9]+)"
    r"(_(?P<t0>\d{6,12})-(?P<t1>\d{6,12}))?\.nc$"
)


@pytest.fixture(scope="module")
def cmip6() -> list[dict[str, Any]]:
    return list(generate_items(3000, seed=7))


@pytest.fixture(scope="module")
def cordex() -> list[dict[str, Any]]:
    return list(generate_items(1500, project="CORDEX", seed=7))


def _core_stac(document: dict[str, Any]) -> dict[str, Any]:
    # Extension schemas are fetched from the web, which tests have not; the core ones
    # ship with pystac.
    return {**document, "stac_extensions": []}


# --- CMIP6 --------------------------------------------------------------------------------


def test_cmip6_ids_follow_the_drs(cmip6: list[dict[str, Any]]) -> None:
    for item in cmip6:
        assert CMIP6_ID.match(item["id"]), item["id"]
        props = item["properties"]
        _, activity, institution, source, exp, member, table, var, grid, version = item["id"].split(
            "."
        )
        assert props["cmip6:activity_id"] == [activity]
        assert props["cmip6:institution_id"] == institution
        assert props["cmip6:source_id"] == source
        assert props["cmip6:experiment_id"] == exp
        assert props["cmip6:member_id"] == member
        assert props["cmip6:table_id"] == table
        assert props["cmip6:variable_id"] == var
        assert props["cmip6:grid_label"] == grid
        assert props["version"] == version[1:]
        assert props["base_id"] == props["title"] == item["id"].rsplit(".", 1)[0]
        assert item["collection"] == "CMIP6"


def test_cmip6_facets_agree_with_the_vocabulary(cmip6: list[dict[str, Any]]) -> None:
    for item in cmip6:
        props = item["properties"]
        exp = vocab.EXPERIMENTS[props["cmip6:experiment_id"]]
        source = vocab.SOURCES[props["cmip6:source_id"]]
        table = vocab.TABLES[props["cmip6:table_id"]]
        variables = {v.variable_id: v for v in table.variables}
        var = variables[props["cmip6:variable_id"]]

        assert props["cmip6:activity_id"] == [exp.activity_id]
        assert props["cmip6:experiment"] == exp.description
        assert props["cmip6:institution_id"] in source.institutions
        assert props["cmip6:source_type"] == list(source.source_type)
        assert props["cmip6:nominal_resolution"] == source.nominal_resolution
        assert props["cmip6:frequency"] == table.frequency_of(var)
        assert props["cmip6:realm"] == table.realm_of(var).split()
        assert props["cmip6:variable_units"] == var.units
        assert props["cmip6:variable_cf_standard_name"] == var.standard_name
        grid = source.atmos_grid if table.grid == "atmos" else source.ocean_grid
        assert props["cmip6:grid_label"] == grid
        assert grid in vocab.GRID_LABELS
        if exp.needs:
            assert exp.needs in source.source_type
        if exp.sources:
            assert source.source_id in exp.sources
        if exp.kind == "atmos":
            assert table.table_id in vocab.ATMOS_ONLY_TABLES

        member = MEMBER.match(props["cmip6:member_id"])
        assert member is not None
        assert int(member["p"]) == source.physics
        assert int(member["f"]) == source.forcing
        assert props["cmip6:variant_label"] == props["cmip6:member_id"].split("-")[-1]
        sub = member["sub"]
        assert (sub is not None) == bool(exp.sub_experiments)
        assert props["cmip6:sub_experiment_id"] == (f"s{sub}" if sub else "none")

        y0, y1 = (int(sub) + 1, int(sub) + 10) if sub else (exp.start_year, exp.end_year)
        assert props["start_datetime"].startswith(f"{y0:04d}-01-")
        assert props["end_datetime"].startswith(f"{y1:04d}-12-")
        assert props["datetime"] is None
        assert item["bbox"] == [-180.0, -90.0, 180.0, 90.0]
        assert props["latest"] is True
        assert props["retracted"] is False
        assert props["replica"] is False
        assert props["data_node"] == "east"


def test_one_simulation_has_one_institution_and_version(cmip6: list[dict[str, Any]]) -> None:
    seen: dict[tuple[str, str, str], tuple[str, str]] = {}
    for item in cmip6:
        props = item["properties"]
        run = (props["cmip6:source_id"], props["cmip6:experiment_id"], props["cmip6:member_id"])
        got = (props["cmip6:institution_id"], props["version"])
        assert seen.setdefault(run, got) == got


def test_cmip6_files_follow_the_drs_and_cover_the_span(cmip6: list[dict[str, Any]]) -> None:
    for item in cmip6:
        props = item["properties"]
        names = list(item["assets"])
        frequency = props["cmip6:frequency"]
        spans = []
        for name in names:
            m = CMIP6_FILE.match(name)
            assert m, name
            assert (m["var"], m["table"], m["source"], m["exp"], m["member"], m["grid"]) == (
                props["cmip6:variable_id"],
                props["cmip6:table_id"],
                props["cmip6:source_id"],
                props["cmip6:experiment_id"],
                props["cmip6:member_id"],
                props["cmip6:grid_label"],
            )
            if frequency == "fx":
                assert m["t0"] is None
            else:
                width = {"mon": 6, "day": 8}.get(frequency, 12)
                assert len(m["t0"]) == len(m["t1"]) == width
                spans.append((int(m["t0"][:4]), int(m["t1"][:4])))
        if frequency == "fx":
            assert len(names) == 1
            continue
        # Consecutive, no gap, no overlap, from the first year to the last.
        assert spans == sorted(spans)
        assert spans[0][0] == int(props["start_datetime"][:4])
        assert spans[-1][1] == int(props["end_datetime"][:4])
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start == end + 1


def test_assets_carry_size_multihash_and_tracking_id(cmip6: list[dict[str, Any]]) -> None:
    tracking_ids = set()
    for item in cmip6:
        total = 0
        for name, asset in item["assets"].items():
            assert CHECKSUM.match(asset["file:checksum"])
            assert isinstance(asset["file:size"], int)
            assert asset["file:size"] > 0
            total += asset["file:size"]
            prefix, _, tail = asset["cmip6:tracking_id"].partition("/")
            assert prefix == "hdl:21.14100"
            parsed = uuid.UUID(tail)
            assert parsed.version == 4
            assert parsed.variant == uuid.RFC_4122
            assert str(parsed) == tail
            tracking_ids.add(tail)
            assert asset["href"].endswith(f"/{asset['file:local_path']}")
            assert asset["file:local_path"].endswith(f"/{name}")
            assert asset["href"].startswith("https://data.east.example/")
            assert asset["roles"] == ["data"]
            assert asset["type"] == "application/netcdf"
            assert asset["alternate:name"] == "east"
            assert asset["alternate"] == {}
        assert total == item["properties"]["size"]
    assert len(tracking_ids) == sum(len(i["assets"]) for i in cmip6)


def test_sizes_are_plausible(cmip6: list[dict[str, Any]]) -> None:
    for item in cmip6:
        props = item["properties"]
        source = vocab.SOURCES[props["cmip6:source_id"]]
        table = vocab.TABLES[props["cmip6:table_id"]]
        cells = source.atmos_cells if table.grid == "atmos" else source.ocean_cells
        years = int(props["end_datetime"][:4]) - int(props["start_datetime"][:4]) + 1
        steps = vocab.STEPS_PER_YEAR[props["cmip6:frequency"]] * years or 1
        # At most 50 levels of float32 uncompressed, at least a tenth of one level.
        assert cells * steps * 4 / 10 < props["size"] < cells * steps * 4 * 50 + 100_000


# --- determinism, uniqueness, node ----------------------------------------------------------


def test_same_seed_same_items_other_seed_other_items() -> None:
    first = list(generate_items(300, seed=42))
    assert first == list(generate_items(300, seed=42))
    other = list(generate_items(300, seed=43))
    assert [i["id"] for i in first] != [i["id"] for i in other]
    # A prefix of a longer run is the shorter run.
    assert list(generate_items(100, seed=42)) == first[:100]


def test_node_changes_only_where_the_data_is() -> None:
    east = list(generate_items(50, seed=3, node="east"))
    west = list(generate_items(50, seed=3, node="west", data_url="https://w.example/files/"))
    for a, b in zip(east, west, strict=True):
        assert a["id"] == b["id"]
        assert b["properties"]["data_node"] == "west"
        assert list(a["assets"]) == list(b["assets"])
        for x, y in zip(a["assets"].values(), b["assets"].values(), strict=True):
            assert x["file:checksum"] == y["file:checksum"]
            assert y["href"] == f"https://w.example/files/{x['file:local_path']}"
        assert b["links"][0]["href"].startswith("https://stac.west.example/collections/CMIP6/")


def test_ids_unique_over_20000_items() -> None:
    for project in ("CMIP6", "CORDEX"):
        ids = [i["id"] for i in generate_items(20_000, project=project, seed=1)]
        assert len(set(ids)) == len(ids)


def test_items_do_not_share_mutable_parts() -> None:
    a, b = generate_items(2, seed=9)
    a["geometry"]["coordinates"][0][0][0] = 0
    a["stac_extensions"].append("x")
    a["properties"]["cmip6:source_type"].append("x")
    assert b["geometry"]["coordinates"][0][0][0] == -180.0
    assert "x" not in b["stac_extensions"]
    assert "x" not in b["properties"]["cmip6:source_type"]


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match="unknown project"):
        generate_items(1, project="CMIP5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="negative"):
        generate_items(-1)
    with pytest.raises(InvalidInput, match="unknown project"):
        collection_for("CMIP5")  # type: ignore[arg-type]
    assert list(generate_items(0)) == []


# --- valid STAC ---------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["CMIP6", "CORDEX"])
def test_items_are_valid_stac(project: Any) -> None:
    for item in generate_items(200, project=project, seed=2):
        assert pystac.Item.from_dict(item).to_dict(transform_hrefs=False) == item
    for item in generate_items(20, project=project, seed=2):
        validate_dict(_core_stac(item))


@pytest.mark.parametrize("project", ["CMIP6", "CORDEX"])
def test_collection_is_valid_stac_and_summarises_the_items(project: Any) -> None:
    collection = collection_for(project)
    assert collection["id"] == project
    parsed = pystac.Collection.from_dict(collection)
    # pystac writes back only summaries of at most 25 values (Summaries.maxcount); what it
    # read is all there.
    assert parsed.summaries.lists == collection["summaries"]
    written = parsed.to_dict(transform_hrefs=False)
    assert {**written, "summaries": None} == {**collection, "summaries": None}
    validate_dict(_core_stac(collection))
    summaries = collection["summaries"]
    interval = collection["extent"]["temporal"]["interval"][0]
    for item in generate_items(2000, project=project, seed=4):
        props = item["properties"]
        for facet, values in summaries.items():
            found = props[facet]
            for value in found if isinstance(found, list) else [found]:
                assert value in values, (facet, value)
        assert interval[0] <= props["start_datetime"]
        assert props["end_datetime"] <= interval[1]


# --- CORDEX -------------------------------------------------------------------------------


def test_cordex_ids_follow_the_drs_and_the_vocabulary(cordex: list[dict[str, Any]]) -> None:
    for item in cordex:
        assert CORDEX_ID.match(item["id"]), item["id"]
        (
            project,
            activity,
            domain,
            institution,
            driver,
            exp,
            variant,
            rcm,
            realization,
            frequency,
            var,
            version,
        ) = item["id"].split(".")
        props = item["properties"]
        assert (project, activity) == ("CORDEX", "DD")
        assert props["cordex:domain_id"] == domain
        assert props["cordex:institution_id"] == institution
        assert props["cordex:driving_source_id"] == driver
        assert props["cordex:driving_experiment_id"] == exp
        assert props["cordex:driving_variant_label"] == variant
        assert props["cordex:source_id"] == rcm
        assert props["cordex:version_realization"] == realization
        assert props["cordex:frequency"] == frequency
        assert props["cordex:variable_id"] == var
        assert props["version"] == version[1:]

        model = vocab_cordex.REGIONAL_MODELS[rcm]
        assert institution in model.institutions
        assert domain in model.domains
        assert props["cordex:source_type"] == model.source_type
        assert frequency in vocab_cordex.CORDEX_VARIABLES[var][1]
        assert item["bbox"] == list(vocab_cordex.DOMAINS[domain].bbox)
        span = vocab_cordex.DRIVING_EXPERIMENTS[exp]
        assert props["start_datetime"].startswith(f"{span.start_year:04d}-01-")
        assert props["end_datetime"].startswith(f"{span.end_year:04d}-12-")
        if exp == "evaluation":
            assert (driver, variant) == (vocab_cordex.REANALYSIS, "none")
        else:
            assert driver in vocab_cordex.DRIVING_SOURCES
            source = vocab.SOURCES[driver]
            m = MEMBER.match(variant)
            assert m is not None
            assert (int(m["p"]), int(m["f"])) == (source.physics, source.forcing)

        stem = (
            f"{var}_{domain}_{driver}_{exp}_{variant}_{institution}_{rcm}_{realization}_{frequency}"
        )
        for name, asset in item["assets"].items():
            assert name.startswith(stem)
            assert CHECKSUM.match(asset["file:checksum"])
            assert asset["cordex:tracking_id"].startswith("hdl:21.14103/")
            assert asset["href"].endswith(f"/v{props['version']}/{name}")


def test_cordex_files_break_where_the_archive_does(cordex: list[dict[str, Any]]) -> None:
    for item in cordex:
        frequency = item["properties"]["cordex:frequency"]
        if frequency == "fx":
            continue
        starts = [int(name.rsplit("_", 1)[1][:4]) for name in item["assets"]]
        years = {"mon": 10, "day": 5}.get(frequency, 1)
        # Every file but the first starts at a year ending in 1 (or 6, for five-year files).
        assert all((start - 1) % years == 0 for start in starts[1:])


# --- speed ----------------------------------------------------------------------------------


def test_speed_of_100k_items(capsys: pytest.CaptureFixture[str]) -> None:
    for project in ("CMIP6", "CORDEX"):
        count = 100_000 if project == "CMIP6" else 20_000
        started = time.perf_counter()
        files = sum(len(i["assets"]) for i in generate_items(count, project=project))
        took = time.perf_counter() - started
        with capsys.disabled():
            print(
                f"\n{project}: {count} items ({files} files) in {took:.2f} s, "
                f"{count / took:,.0f} items/s"
            )
