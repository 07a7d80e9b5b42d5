"""One rule for a place: the bbox check and the GeoJSON walk every door uses, and that the
doors (STAC parameters, CQL2 literals, esg-search, items in events) agree on it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from strato.catalog.api import stac_params
from strato.catalog.demo.generator import generate_items
from strato.catalog.model.event_content import StacItem
from strato.catalog.model.geometry import (
    Envelope,
    GeometryError,
    check_bbox,
    envelopes_meet,
    geometry_envelope,
    polygon,
)
from strato.catalog.search import esg_search, extents
from strato.errors import InvalidInput

BAD_BOXES: list[tuple[list[Any], str]] = [
    ([0, 0, 1], "has 4 or 6 numbers, not 3"),
    ([0, 0, 1, 1, 1], "has 4 or 6 numbers, not 5"),
    ([0, "0", 1, 1], "'0' is not a number"),
    ([True, 0, 1, 1], "True is not a number"),
    ([float("nan"), 0, 1, 1], "numbers must be finite"),
    ([float("inf"), 0, 1, 1], "numbers must be finite"),
    ([0, 0, 200, 1], "longitudes must be within [-180, 180]"),
    ([-181, 0, 1, 1], "longitudes must be within [-180, 180]"),
    ([0, -91, 1, 1], "latitudes must be within [-90, 90]"),
    ([0, 50, 10, 40], "the southern latitude is north of the northern one"),
    ([0, 0, 10, 1, 1, 5], "the top elevation is below the bottom one"),
]


@pytest.mark.parametrize(("box", "reason"), BAD_BOXES)
def test_a_bad_bbox_says_what_is_wrong(box: list[Any], reason: str) -> None:
    with pytest.raises(GeometryError) as caught:
        check_bbox(box)
    assert str(caught.value) == reason


def test_a_good_bbox_is_its_envelope() -> None:
    assert check_bbox([1, 2, 3, 4]) == Envelope(1.0, 2.0, 3.0, 4.0)
    assert check_bbox([1, 2, -5, 3, 4, 5]) == (1.0, 2.0, 3.0, 4.0)
    # Across the antimeridian: west is east of east.
    assert check_bbox([170, -10, -170, 10]) == (170.0, -10.0, -170.0, 10.0)


@pytest.mark.parametrize(("box", "reason"), BAD_BOXES)
def test_every_door_refuses_a_bad_bbox_with_the_same_reason(box: list[Any], reason: str) -> None:
    with pytest.raises(InvalidInput) as stac:
        stac_params.parse_bbox(box)
    assert stac.value.detail == f"bbox: {reason}"
    with pytest.raises(InvalidInput) as cql2:
        extents.envelopes("s_intersects", {"bbox": box})
    assert cql2.value.detail == f"filter: 's_intersects' bbox: {reason}"
    with pytest.raises(InvalidInput) as search:
        extents.bbox_condition(box)
    assert search.value.detail == f"bbox: {reason}"
    item = {**_ITEM, "bbox": box}
    with pytest.raises(ValidationError) as event:
        TypeAdapter(StacItem).validate_python(item)
    # A wrong kind of member is pydantic's own type error; the rest is the same reason.
    messages = [e["msg"] for e in event.value.errors()]
    assert reason in messages or all(e["type"] == "float_type" for e in event.value.errors())


def test_esg_search_keeps_its_own_words() -> None:
    assert esg_search._bbox("[-10, 20, 30, 40]") == (-10.0, 20.0, 30.0, 40.0)
    with pytest.raises(InvalidInput, match=r"'bbox' is \[west,south,east,north\]"):
        esg_search._bbox("1,2,3")
    for value in ("0,50,10,40", "0,0,200,1", "nan,0,1,1"):
        with pytest.raises(InvalidInput, match="'bbox' is out of range"):
            esg_search._bbox(value)


_ITEM = next(iter(generate_items(1, seed=3)))

BAD_GEOMETRIES: list[tuple[Any, str]] = [
    ([0, 0], "[0, 0] is not a GeoJSON geometry"),
    ({"type": "Blob"}, "unknown geometry type 'Blob'"),
    ({"coordinates": [0, 0]}, "unknown geometry type None"),
    ({"type": "Polygon"}, "a Polygon needs coordinates"),
    ({"type": "Point", "coordinates": [0]}, "[0] is not a position [lon, lat]"),
    ({"type": "Point", "coordinates": [[0, 0]]}, "[[0, 0]] is not a position [lon, lat]"),
    ({"type": "LineString", "coordinates": [0, 0]}, "0 is not a position [lon, lat]"),
    ({"type": "Polygon", "coordinates": "x"}, "the coordinates of a Polygon are a list of rings"),
    ({"type": "Point", "coordinates": [0, 95]}, "within WGS 84"),
    ({"type": "Point", "coordinates": [181, 0]}, "within WGS 84"),
    ({"type": "GeometryCollection"}, "a GeometryCollection needs a list of geometries"),
    (
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": []}]},
        "[] is not a position",
    ),
]


@pytest.mark.parametrize(("shape", "reason"), BAD_GEOMETRIES)
def test_a_bad_geometry_says_what_is_wrong(shape: Any, reason: str) -> None:
    with pytest.raises(GeometryError) as caught:
        geometry_envelope(shape)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("shape", "reason"), BAD_GEOMETRIES)
def test_intersects_and_events_refuse_a_bad_geometry_alike(shape: Any, reason: str) -> None:
    with pytest.raises(InvalidInput) as stac:
        stac_params.parse_intersects(shape)
    assert stac.value.detail.startswith("intersects: ")
    assert reason in stac.value.detail
    with pytest.raises(ValidationError) as event:
        TypeAdapter(StacItem).validate_python({**_ITEM, "geometry": shape})
    [error] = event.value.errors()
    assert error["loc"] == ("geometry",)
    assert reason in error["msg"] or error["type"] == "dict_type"


def test_nested_collections_are_bounded() -> None:
    shape: dict[str, Any] = {"type": "Point", "coordinates": [1, 2]}
    for _ in range(4):
        shape = {"type": "GeometryCollection", "geometries": [shape]}
    assert geometry_envelope(shape) == (1.0, 2.0, 1.0, 2.0)
    with pytest.raises(GeometryError, match="nest at most 4"):
        geometry_envelope({"type": "GeometryCollection", "geometries": [shape]})


def test_envelope_of_each_kind() -> None:
    assert geometry_envelope({"type": "Point", "coordinates": [1, 2, 300]}) == (1, 2, 1, 2)
    line = {"type": "LineString", "coordinates": [[-5, 1], [5, -1], [0, 3]]}
    assert geometry_envelope(line) == (-5, -1, 5, 3)
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            polygon([0, 0, 1, 1])["coordinates"],
            polygon([10, -4, 12, 2])["coordinates"],
        ],
    }
    assert geometry_envelope(multi) == (0, -4, 12, 2)
    mixed = {"type": "GeometryCollection", "geometries": [line, multi]}
    assert geometry_envelope(mixed) == (-5, -4, 12, 3)
    # Empty geometries have no envelope: they intersect nothing.
    assert geometry_envelope({"type": "GeometryCollection", "geometries": []}) is None
    assert geometry_envelope({"type": "Polygon", "coordinates": []}) is None
    assert extents.envelopes("s_intersects", {"type": "Polygon", "coordinates": []}) == []
    with pytest.raises(InvalidInput, match="intersects: the geometry has no positions"):
        stac_params.parse_intersects({"type": "MultiPoint", "coordinates": []})


def test_envelopes_meet_across_the_antimeridian() -> None:
    pacific = Envelope(170, -10, -170, 10)
    assert envelopes_meet(pacific, Envelope(175, 0, 176, 1))
    assert envelopes_meet(pacific, Envelope(-175, 0, -174, 1))
    assert not envelopes_meet(pacific, Envelope(0, 0, 10, 1))
    assert not envelopes_meet(pacific, Envelope(175, 20, 176, 30))
    assert envelopes_meet(pacific, Envelope(160, 5, -175, 20))
    assert envelopes_meet(Envelope(-180, -90, 180, 90), Envelope(0, 0, 0, 0))
