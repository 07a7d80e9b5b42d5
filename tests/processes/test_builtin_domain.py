"""Parsing the requests of the built-in processes: every error names its input."""

from __future__ import annotations

from typing import Any

import pytest

from strato.data.model.selection import Range
from strato.errors import InvalidInput
from strato.processes.builtin.descriptions import BUILTIN, description
from strato.processes.builtin.domain import (
    Index,
    parse_axes,
    parse_domain,
    parse_freq,
    parse_source,
    parse_variable,
)


def test_a_domain_as_json_and_as_the_plot_syntax() -> None:
    domain = parse_domain(
        {
            "lat": [-30, 30],
            "lon": {"start": 0},
            "time": "2001-06",
            "level": {"index": 0},
            "x": {"index": [2, -1]},
            "y": 4.5,
            "t": "2001:2003-06",
        }
    )
    assert domain.items == {
        "lat": Range(-30.0, 30.0),
        "lon": Range(0.0, None),
        "time": "2001-06",
        "level": Index(0, 0, scalar=True),
        "x": Index(2, -1),
        "y": 4.5,
        "t": Range("2001", "2003-06"),
    }
    assert parse_domain("time=2001:2002,lat=-30:30").items == {
        "time": Range("2001", "2002"),
        "lat": Range(-30.0, 30.0),
    }


@pytest.mark.parametrize(
    ("domain", "field"),
    [
        ({"lat": "north"}, "domain.lat"),
        ({"lat": [1, 2, 3]}, "domain.lat"),
        ({"lat": {"from": 1}}, "domain.lat"),
        ({"lat": [0, True]}, "domain.lat[1]"),
        ({"time": {"index": 1.5}}, "domain.time.index"),
        ({"lat": [float("nan"), 1]}, "domain.lat[0]"),
        ({"1bad": 0}, "domain.1bad"),
        ([1, 2], "domain"),
        ("lat=", "domain"),
    ],
)
def test_bad_domains_name_the_json_path(domain: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_domain(domain)
    error = caught.value.errors[0]
    assert (error["field"], error["input"], error["path"]) == (field, "domain", f"$.{field}")
    assert caught.value.detail.startswith(f"{field}: ")


def test_the_operands_of_a_difference_are_named_by_their_prefix() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_variable({"dataset": "d", "domain": {"lat": "x"}, "variable": "tas"}, "b.")
    assert caught.value.errors[0]["field"] == "b.domain.lat"
    assert caught.value.errors[0]["input"] == "b"
    with pytest.raises(InvalidInput) as caught:
        parse_variable({"dataset": "d"}, "a.")
    assert caught.value.errors[0]["field"] == "a.variable"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({}, "dataset"),
        ({"dataset": "a", "href": "/b"}, "dataset"),
        ({"dataset": "../etc"}, "dataset"),
        ({"href": "relative/file.nc"}, "href"),
        ({"href": "https://example.org/data.nc"}, "href"),
        ({"href": "/data/\x00.nc"}, "href"),
    ],
)
def test_sources_are_a_dataset_id_or_a_local_absolute_path(
    inputs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_source(inputs)
    assert caught.value.errors[0]["field"] == field


def test_file_urls_are_paths() -> None:
    assert parse_source({"href": "file:///srv/data/a.nc"}).path == "/srv/data/a.nc"


def test_axes_and_frequencies() -> None:
    assert parse_axes({"axes": ["lat", "lon"]}) == ("lat", "lon")
    assert parse_axes({"axes": "time, lat"}) == ("time", "lat")
    assert parse_axes({}) is None
    with pytest.raises(InvalidInput, match=r"axes\[1\]: lat is given twice"):
        parse_axes({"axes": ["lat", "lat"]})
    for freq in ("1MS", "QS-DEC", "YS", "5D", "6h"):
        assert parse_freq({"freq": freq}) == freq
    for bad in ("1 MS", "QS-DECEMBER", "MS;", "", "10000D"):
        with pytest.raises(InvalidInput, match=r"^freq: "):
            parse_freq({"freq": bad})


def test_every_builtin_is_described_with_its_task() -> None:
    assert set(BUILTIN) == {"subset", "reduce", "climatology", "anomaly", "resample", "difference"}
    for pid, (task, described) in BUILTIN.items():
        assert task == f"strato.processes.builtin.tasks:{pid}"
        assert described["id"] == pid
        assert described["outputs"]["result"]["schema"]
        for spec in described["inputs"].values():
            assert {"schema", "minOccurs", "maxOccurs"} <= set(spec)
    first = description("reduce")
    first["inputs"].clear()
    assert description("reduce")["inputs"], "descriptions are copies"
