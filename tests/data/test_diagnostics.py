"""Groupby reductions, checked against xarray computing the same thing directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from strato.data.analysis.diagnostics import ACTIONS, GROUPERS, groupby_reduce
from strato.data.demo.collection import generate_demo
from strato.errors import InvalidInput, NotFound, PayloadTooLarge

BUDGET = 1 << 30
COMBINE = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}


@pytest.fixture
def ds(netcdf_file: Path) -> Iterator[xr.Dataset]:
    with xr.open_dataset(netcdf_file, chunks={}) as opened:
        yield opened


@pytest.fixture
def monthly(tmp_path: Path) -> Iterator[xr.Dataset]:
    demo = generate_demo(tmp_path, scale="small")[0]
    with xr.open_mfdataset(demo.glob, **COMBINE) as opened:
        yield opened


def test_monthly_climatology_equals_xarray(monthly: xr.Dataset) -> None:
    clim = groupby_reduce(monthly, "tas", "time.month", "mean", byte_budget=BUDGET)
    expected = monthly.tas.groupby("time.month").mean().compute()
    assert clim.sizes["month"] == 12
    assert list(clim.month.values) == list(range(1, 13))
    np.testing.assert_allclose(clim.tas.values, expected.values, rtol=1e-6)
    # Computed: numpy inside, nothing left to read.
    assert isinstance(clim.tas.variable._data, np.ndarray)
    # Still what the source was, with a note of what was done.
    assert clim.tas.attrs["units"] == "K"
    assert clim.tas.attrs["long_name"] == "Near-Surface Air Temperature"
    assert clim.tas.attrs["cell_methods"] == (
        "area: time: mean time: mean (comment: grouped by time.month)"
    )
    assert (
        clim.attrs["history"]
        .splitlines()[0]
        .endswith("strato: tas grouped by time.month, mean of each group")
    )
    assert clim.attrs["source_id"] == "STRATO-DEMO"
    # One variable and its coordinates, no stray bounds.
    assert list(clim.data_vars) == ["tas"]
    assert "bounds" not in clim.lat.attrs
    assert set(clim.coords) >= {"month", "lat", "lon"}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_equals_xarray(ds: xr.Dataset, action: str) -> None:
    result = groupby_reduce(ds, "pr", "time.season", action, byte_budget=BUDGET)
    grouped = ds.pr.groupby("time.season")
    direct = {
        "mean": grouped.mean,
        "min": grouped.min,
        "max": grouped.max,
        "sum": grouped.sum,
        "std": grouped.std,
        "count": grouped.count,
        "first": grouped.first,
        "last": grouped.last,
    }[action]().compute()
    assert result.sizes["season"] == 4
    assert list(result.season.values) == list(direct.season.values)
    np.testing.assert_allclose(result.pr.values, direct.values, rtol=1e-6, equal_nan=True)
    # pr has missing values: count sees fewer there, the rest handle them.
    assert not np.isnan(result.pr.values[:, 1:, :]).any()


def test_count_is_a_number_not_a_flux(ds: xr.Dataset) -> None:
    count = groupby_reduce(ds, "pr", "time.year", "count", byte_budget=BUDGET).pr
    assert count.attrs["units"] == "1"
    assert "standard_name" not in count.attrs
    assert count.attrs["long_name"] == "Number of valid values of Precipitation"
    assert int(count.sel(year=2000).isel(lat=0, lon=0)) == 0  # missing throughout
    assert int(count.sel(year=2000).isel(lat=5, lon=5)) == 12


@pytest.mark.parametrize("grouper", GROUPERS)
def test_every_time_grouper(ds: xr.Dataset, grouper: str) -> None:
    result = groupby_reduce(ds, "tas", grouper, "max", byte_budget=BUDGET)
    direct = ds.tas.groupby(grouper).max().compute()
    name = grouper.split(".")[1]
    assert result.sizes[name] == direct.sizes[name]
    np.testing.assert_allclose(result.tas.values, direct.values)


def test_yearly_means_of_daily_packed_data(tmp_path: Path) -> None:
    daily = generate_demo(tmp_path, scale="small")[2]
    with xr.open_mfdataset(daily.glob, **COMBINE) as ds:
        result = groupby_reduce(ds, "tasmax", "time.year", "mean", byte_budget=BUDGET)
        expected = ds.tasmax.groupby("time.year").mean().compute()
    assert list(result.year.values) == [2013, 2014]
    np.testing.assert_allclose(result.tasmax.values, expected.values, rtol=1e-6)
    assert result.tasmax.attrs["cell_methods"].startswith("area: mean time: maximum time: mean")


def test_grouping_by_a_plain_coordinate(ds: xr.Dataset) -> None:
    banded = ds.assign_coords(band=("lat", np.where(ds.lat.values > 0, "north", "south")))
    result = groupby_reduce(banded, "tas", "band", "mean", byte_budget=BUDGET)
    direct = banded.tas.groupby("band").mean().compute()
    assert list(result.band.values) == ["north", "south"]
    np.testing.assert_allclose(result.tas.values, direct.values, rtol=1e-6)
    north = float(result.tas.sel(band="north").mean())
    assert north == pytest.approx(float(ds.tas.where(ds.lat > 0).mean()), rel=1e-5)


# --- errors -----------------------------------------------------------------------------


def test_unknown_variable_is_not_found(ds: xr.Dataset) -> None:
    with pytest.raises(NotFound, match="'nope' in this dataset; the variables are tas, pr, sst"):
        groupby_reduce(ds, "nope", "time.month", "mean", byte_budget=BUDGET)


@pytest.mark.parametrize("coord", ["time.week", "depth", "time.month.x", "lat.month", "", "."])
def test_unknown_grouping_lists_the_valid_ones(ds: xr.Dataset, coord: str) -> None:
    with pytest.raises(InvalidInput) as info:
        groupby_reduce(ds, "tas", coord, "mean", byte_budget=BUDGET)
    detail = info.value.detail
    if coord == "lat.month":
        assert "lat.month needs lat to hold dates" in detail
    else:
        assert "time.month, time.season, time.year, time.day, time.dayofyear, time.hour" in detail
        assert "its coordinates: time, lat, lon" in detail


def test_unknown_action_lists_the_actions(ds: xr.Dataset) -> None:
    with pytest.raises(
        InvalidInput, match="unknown action 'median'; the actions are mean, min, max, sum, std"
    ):
        groupby_reduce(ds, "tas", "time.month", "median", byte_budget=BUDGET)
    with pytest.raises(InvalidInput, match="unknown action '__class__'"):
        groupby_reduce(ds, "tas", "time.month", "__class__", byte_budget=BUDGET)


def test_over_budget_is_payload_too_large(ds: xr.Dataset) -> None:
    size = 24 * 18 * 36 * 4
    with pytest.raises(PayloadTooLarge) as info:
        groupby_reduce(ds, "tas", "time.month", "mean", byte_budget=1000)
    assert info.value.detail == (
        f"grouping tas by time.month would read 60.8 KiB ({size} bytes), "
        "more than the limit of 1000 bytes (1000 bytes)"
    )
    assert groupby_reduce(ds, "tas", "time.month", "mean", byte_budget=size).sizes["month"] == 12


def test_the_source_dataset_stays_lazy(ds: xr.Dataset) -> None:
    groupby_reduce(ds, "tas", "time.month", "mean", byte_budget=BUDGET)
    assert ds.tas.chunks is not None
