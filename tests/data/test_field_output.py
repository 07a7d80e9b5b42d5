"""Model output that is common in the field, served over real HTTP and read with xarray/zarr."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from tests.data.model_files import (
    write_calendar_file,
    write_curvilinear_file,
    write_hdf5_without_scales,
    write_packed_file,
    write_station_zarr,
)
from tests.data.test_http import Node, make_node


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from make_node(tmp_path, serve)


def _register(node: Node, dataset_id: str, path: Path) -> None:
    r = node.register(dataset_id, [str(path)])
    assert r.status_code == 201, r.text


def _png(r: Any) -> Image.Image:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def _colours(image: Image.Image) -> int:
    return len(image.getcolors(maxcolors=1 << 24) or [])


# --- cftime calendars -------------------------------------------------------------------


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_stac_item_of_a_model_calendar_gives_iso_dates(
    node: Node, tmp_path: Path, calendar: str
) -> None:
    _register(node, "model", write_calendar_file(tmp_path / f"tas_{calendar}.nc", calendar))
    r = node.http.get("/datasets/model/stac")
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["start_datetime"] == "2000-01-15T00:00:00Z"
    assert props["end_datetime"] == "2002-12-15T00:00:00Z"
    assert props["cube:dimensions"]["time"] == {
        "type": "temporal",
        "extent": ["2000-01-15T00:00:00Z", "2002-12-15T00:00:00Z"],
    }
    collection = node.http.get("/stac-collection-all.json")
    assert collection.status_code == 200, collection.text
    assert collection.json()["extent"]["temporal"]["interval"] == [
        ["2000-01-15T00:00:00Z", "2002-12-15T00:00:00Z"]
    ]
    page = node.http.get("/datasets/model/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "2000-01-15 to 2002-12-15" in page.text
    for path in ("info", "dict", "groupby/tas/time.season/mean", "groupby/tas/time.year/max"):
        r = node.http.get(f"/datasets/model/{path}")
        assert r.status_code == 200, (path, r.text)
    seasons = xr.open_dataset(
        f"{node.url}/datasets/model/groupby/tas/time.season/mean/zarr/",
        engine="zarr",
        zarr_format=3,
    )
    assert sorted(seasons.season.values.tolist()) == ["DJF", "JJA", "MAM", "SON"]


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_plots_select_dates_on_a_model_calendar(node: Node, tmp_path: Path, calendar: str) -> None:
    _register(node, "model", write_calendar_file(tmp_path / f"tas_{calendar}.nc", calendar))
    plot = "/datasets/model/plot/tas"
    _png(node.http.get(f"{plot}/map/viridis/time=2001-06"))
    _png(node.http.get(f"{plot}/timeseries/viridis/time=2001:2002-06,lat=-30:30"))
    _png(node.http.get(f"{plot}/hovmoller/RdBu_r/time=2001-03:2001-09"))
    _png(node.http.get(f"{plot}/timeseries/viridis/all"))
    r = node.http.get(f"{plot}/map/viridis/time=1990-06")
    assert r.status_code == 400
    assert "time runs from 2000-01-15 to 2002-12-15" in r.json()["detail"]


def test_thirtieth_of_february_selects_on_a_360_day_calendar(node: Node, tmp_path: Path) -> None:
    path = write_calendar_file(tmp_path / "tas_360.nc", "360_day")
    _register(node, "model", path)
    _png(node.http.get("/datasets/model/plot/tas/timeseries/viridis/time=2001-02-01:2001-02-30"))


# --- curvilinear grids ------------------------------------------------------------------


@pytest.mark.parametrize("dims", [("j", "i"), ("y", "x")])
def test_map_of_a_curvilinear_grid_is_drawn_on_its_2d_coordinates(
    node: Node, tmp_path: Path, dims: tuple[str, str]
) -> None:
    _register(node, "ocean", write_curvilinear_file(tmp_path / "tos.nc", dims))
    image = _png(node.http.get("/datasets/ocean/plot/tos/map/viridis/time=2001-02"))
    assert _colours(image) > 50  # a field, not an empty frame
    page = node.http.get("/datasets/ocean/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert 'id="quicklook"' in page.text
    _png(node.http.get("/datasets/ocean/plot/tos/map/viridis/all"))
    # The area mean of a curvilinear field is a line, not a refusal.
    _png(node.http.get("/datasets/ocean/plot/tos/timeseries/viridis/all"))


# --- strings ----------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_season_groupby_result_keeps_its_season_coordinate(
    node: Node, tmp_path: Path, netcdf_file: Path, zarr_format: int
) -> None:
    _register(node, "one", netcdf_file)
    url = f"{node.url}/datasets/one/groupby/tas/time.season/mean/zarr/"
    remote = xr.open_dataset(url, engine="zarr", zarr_format=zarr_format)
    with xr.open_dataset(netcdf_file) as source:
        expected = source.tas.groupby("time.season").mean()
    assert list(remote["season"].values) == list(expected["season"].values)
    np.testing.assert_allclose(remote.tas.values, expected.values, rtol=1e-6)


@pytest.mark.parametrize("source_format", [2, 3])
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_string_variables_of_a_source_are_served(
    node: Node, tmp_path: Path, zarr_format: int, source_format: int
) -> None:
    path = write_station_zarr(tmp_path / "stations.zarr", source_format)
    _register(node, "stations", path)
    remote = node.open("stations", zarr_format=zarr_format)
    with xr.open_dataset(path, engine="zarr") as source:
        xr.testing.assert_equal(remote, source)
        assert list(remote.station_name.values) == list(source.station_name.values)


# --- packing ------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["NETCDF4", "NETCDF3_64BIT"])
@pytest.mark.parametrize(("store", "zarr_format"), [("zarr", 2), ("zarr", 3), ("kerchunk", 2)])
def test_float32_packing_decodes_to_float32_as_from_the_file(
    node: Node, tmp_path: Path, store: str, zarr_format: int, file_format: str
) -> None:
    path = write_packed_file(tmp_path / "tos_packed.nc", file_format)
    _register(node, "packed", path)
    remote = node.open("packed", store, zarr_format=zarr_format)
    with xr.open_dataset(path) as source:
        assert source.tos.dtype == np.float32
        assert remote.tos.dtype == source.tos.dtype
        assert remote.tos.attrs == source.tos.attrs
        got, want = remote.tos.values, source.tos.values
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(want).any()
        if store == "zarr":
            np.testing.assert_array_equal(got, want)
        else:
            # Original chunks unpack in zarr's fixedscaleoffset filter, rounding once from
            # float64 where xarray's float32 arithmetic rounds twice: the two differ by at
            # most a float32 step of the values' magnitude.
            step = np.spacing(np.float32(np.nanmax(np.abs(want))))
            np.testing.assert_allclose(got, want, rtol=0, atol=2 * step)


# --- HDF5 without dimension scales ----------------------------------------------------------


def test_hdf5_without_dimension_scales_is_served_alike_by_both_stores(
    node: Node, tmp_path: Path
) -> None:
    path = write_hdf5_without_scales(tmp_path / "granule.h5")
    _register(node, "granule", path)
    with xr.open_dataset(path) as source:
        processed = node.open("granule", zarr_format=3)
        raw = node.open("granule", "kerchunk", zarr_format=2)
        for remote in (processed, raw):
            xr.testing.assert_equal(remote, source)
            assert dict(remote.sizes) == dict(source.sizes)
            for name, var in source.variables.items():
                assert remote[name].dims == var.dims, name
    with xr.open_dataset(path, group="geolocation") as source:
        raw = node.open("granule", "kerchunk", zarr_format=2, group="geolocation")
        xr.testing.assert_equal(raw, source)
