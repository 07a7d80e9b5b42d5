"""The CMIP6-like demo collection, generated small, read back with xarray and netCDF4."""

from __future__ import annotations

import glob
import re
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from strato.data.demo.collection import DemoDataset, generate_demo

IDS = ["cmip6-demo-tas-mon", "cmip6-demo-pr-mon", "cmip6-demo-tasmax-day"]
DRS = re.compile(
    r"CMIP6/CMIP/STRATO/STRATO-DEMO/historical/r1i1p1f1/(Amon|day)/(tas|pr|tasmax)/gn/v\d{8}/"
    r"\2_\1_STRATO-DEMO_historical_r1i1p1f1_gn_(\d{6}-\d{6}|\d{8}-\d{8})\.nc"
)
COMBINE = {"data_vars": "minimal", "coords": "minimal", "compat": "override", "join": "override"}


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, DemoDataset]:
    return {d.id: d for d in generate_demo(tmp_path / "demo", scale="small")}


def test_small_collection_is_quick_and_complete(tmp_path: Path) -> None:
    started = time.perf_counter()
    datasets = generate_demo(tmp_path, scale="small")
    assert time.perf_counter() - started < 5  # well under a second here; generous for CI
    assert [d.id for d in datasets] == IDS
    for d in datasets:
        assert d.title
        assert d.description
        assert Path(d.glob).is_absolute()
        assert sorted(glob.glob(d.glob)) == [str(p) for p in d.paths]
        assert len(d.paths) >= 2
        for path in d.paths:
            assert DRS.search(path.as_posix()), path


def test_files_carry_cmip6_and_cf_metadata(demo: dict[str, DemoDataset]) -> None:
    path = demo["cmip6-demo-tas-mon"].paths[0]
    assert path.name == "tas_Amon_STRATO-DEMO_historical_r1i1p1f1_gn_198001-198012.nc"
    with xr.open_dataset(path) as ds:
        a = ds.attrs
        assert a["Conventions"] == "CF-1.7 CMIP-6.2"
        assert (a["mip_era"], a["activity_id"], a["institution_id"]) == ("CMIP6", "CMIP", "STRATO")
        assert (a["source_id"], a["experiment_id"]) == ("STRATO-DEMO", "historical")
        assert a["variant_label"] == a["member_id"] == "r1i1p1f1"
        assert (a["table_id"], a["frequency"], a["variable_id"]) == ("Amon", "mon", "tas")
        assert a["grid_label"] == "gn"
        assert re.fullmatch(
            r"hdl:21\.14100/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
            r"[0-9a-f]{12}",
            a["tracking_id"],
        )
        assert "license" in a
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a["creation_date"])
        assert ds.tas.attrs["standard_name"] == "air_temperature"
        assert ds.tas.attrs["units"] == "K"
        assert ds.lat.attrs["units"] == "degrees_north"
        assert ds.lon.attrs["units"] == "degrees_east"
        assert ds.sizes["time"] == 12
        assert ds.time.dtype.kind == "M"
        for name in ("time", "lat", "lon"):
            assert ds[name].attrs["bounds"] == f"{name}_bnds"
            assert f"{name}_bnds" in ds
        # Bounds enclose their points.
        assert (ds.lat_bnds[:, 0] < ds.lat).all()
        assert (ds.lat < ds.lat_bnds[:, 1]).all()
        assert (ds.time_bnds[:, 0] < ds.time).all()
        assert (ds.time < ds.time_bnds[:, 1]).all()
        assert float(ds.height) == 2.0
    with netCDF4.Dataset(path) as nc:
        assert nc.data_model == "NETCDF4"
        tas = nc["tas"]
        assert tas.filters()["zlib"]
        assert tas.filters()["shuffle"]
        assert tas.chunking() == [1, tas.shape[1], tas.shape[2]]
        assert nc["time"].units == "days since 1850-01-01"
        assert nc["time"].calendar == "standard"


def test_yearly_files_share_time_units_and_concatenate(demo: dict[str, DemoDataset]) -> None:
    d = demo["cmip6-demo-tas-mon"]
    units = set()
    for path in d.paths:
        with netCDF4.Dataset(path) as nc:
            units.add(nc["time"].units)
    assert units == {"days since 1850-01-01"}
    with xr.open_mfdataset(d.glob, **COMBINE) as ds:
        assert ds.sizes["time"] == 12 * len(d.paths)
        assert np.issubdtype(ds.time.dtype, np.datetime64)
        assert ds.indexes["time"].is_monotonic_increasing
        assert str(ds.time.values[0])[:7] == "1980-01"
        assert str(ds.time.values[-1])[:7] == "1982-12"
    # Raw values concatenate too: the same encoding in every file.
    with xr.open_mfdataset(d.glob, decode_cf=False, **COMBINE) as raw:
        assert np.all(np.diff(raw.time.values) > 0)


def test_fields_are_plausible(demo: dict[str, DemoDataset]) -> None:
    with xr.open_mfdataset(demo["cmip6-demo-tas-mon"].glob, **COMBINE) as ds:
        tas = ds.tas.load()
    assert float(tas.min()) > 180
    assert float(tas.max()) < 330
    zonal = tas.mean(["time", "lon"])
    assert (
        float(zonal.sel(lat=0, method="nearest")) > float(zonal.sel(lat=85, method="nearest")) + 20
    )
    north, south = tas.sel(lat=55, method="nearest"), tas.sel(lat=-55, method="nearest")
    july, january = tas.time.dt.month == 7, tas.time.dt.month == 1
    assert float(north[july].mean()) > float(north[january].mean()) + 5
    assert float(south[january].mean()) > float(south[july].mean()) + 2
    with xr.open_mfdataset(demo["cmip6-demo-pr-mon"].glob, **COMBINE) as ds:
        pr = ds.pr.load()
    assert pr.attrs["units"] == "kg m-2 s-1"
    assert float(pr.min()) >= 0
    mm_day = pr.mean(["time", "lon"]) * 86400
    itcz, subtropics = mm_day.sel(lat=5, method="nearest"), mm_day.sel(lat=-25, method="nearest")
    assert 0.5 < float(mm_day.mean()) < 10
    assert float(itcz) > 2 * float(subtropics)


def test_packed_daily_variable_decodes_with_missing_values(demo: dict[str, DemoDataset]) -> None:
    d = demo["cmip6-demo-tasmax-day"]
    assert [p.name for p in d.paths] == [
        "tasmax_day_STRATO-DEMO_historical_r1i1p1f1_gn_20130101-20131231.nc",
        "tasmax_day_STRATO-DEMO_historical_r1i1p1f1_gn_20140101-20141231.nc",
    ]
    with netCDF4.Dataset(d.paths[0]) as nc:
        v = nc["tasmax"]
        assert v.dtype == np.int16
        assert {"scale_factor", "add_offset", "_FillValue"} <= set(v.ncattrs())
    with xr.open_mfdataset(d.glob, **COMBINE) as ds:
        tasmax = ds.tasmax.load()
    assert ds.sizes["time"] == 365 + 365
    assert tasmax.dtype == np.float64  # float64 packing attributes unpack to float64
    missing = int(tasmax.isnull().sum())
    assert 0 < missing < tasmax.size * 0.01
    assert float(tasmax.min()) > 200
    assert float(tasmax.max()) < 340
    with xr.open_dataset(d.paths[0]) as one:
        assert one.tasmax.encoding["dtype"] == np.int16


def test_second_call_rewrites_nothing(tmp_path: Path) -> None:
    first = generate_demo(tmp_path, scale="small")
    paths = [p for d in first for p in d.paths]
    mtimes = {p: p.stat().st_mtime_ns for p in paths}
    time.sleep(0.01)
    second = generate_demo(tmp_path, scale="small")
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in paths} == mtimes
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".nc"]
    assert leftovers == []


def test_a_lost_file_is_regenerated_with_the_same_values(tmp_path: Path) -> None:
    d = generate_demo(tmp_path, scale="small", seed=3)[1]
    with xr.open_dataset(d.paths[1]) as ds:
        before = ds.pr.values.copy()
        tracking = ds.attrs["tracking_id"]
    d.paths[1].unlink()
    generate_demo(tmp_path, scale="small", seed=3)
    with xr.open_dataset(d.paths[1]) as ds:
        np.testing.assert_array_equal(ds.pr.values, before)
        assert ds.attrs["tracking_id"] == tracking
    other = generate_demo(tmp_path / "other", scale="small", seed=4)[1]
    with xr.open_dataset(other.paths[1]) as ds:
        assert not np.array_equal(ds.pr.values, before)
