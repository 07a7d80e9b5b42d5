"""The selection syntax of plot URLs: parsing, and applying to real decoded files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from strato.data.demo.collection import generate_demo
from strato.data.model.selection import (
    SELECTION_HELP,
    Range,
    Selection,
    apply_selection,
    parse_selection,
)
from strato.errors import InvalidInput
from tests.data.model_files import write_calendar_file

# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "all", "-", "  all  "])
def test_no_selection(text: str) -> None:
    assert dict(parse_selection(text).items) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "time=2001-06,lat=-30:30,lon=0:90",
            {"time": "2001-06", "lat": Range(-30.0, 30.0), "lon": Range(0.0, 90.0)},
        ),
        ("lat=45.5", {"lat": 45.5}),
        ("lat=-1e1", {"lat": -10.0}),
        ("plev=85000", {"plev": 85000.0}),
        ("time=2001", {"time": "2001"}),
        ("time=2001-06-15", {"time": "2001-06-15"}),
        ("time=2001-06-15T12:00", {"time": "2001-06-15T12:00"}),
        ("time=2001-06-15T12:00:30", {"time": "2001-06-15T12:00:30"}),
        ("time=1990:2000-06", {"time": Range("1990", "2000-06")}),
        (
            "time=2001-06-15T12:00:2001-06-16T06:30",
            {"time": Range("2001-06-15T12:00", "2001-06-16T06:30")},
        ),
        ("time=2001-06-15T12:00:", {"time": Range("2001-06-15T12:00", None)}),
        ("lon=:90", {"lon": Range(None, 90.0)}),
        ("lon=10:", {"lon": Range(10.0, None)}),
        ("lon=:", {"lon": Range(None, None)}),
        (" lat = 10 , lon = 20 ", {"lat": 10.0, "lon": 20.0}),
        ("member_id=3", {"member_id": 3.0}),
    ],
)
def test_parse(text: str, expected: dict[str, object]) -> None:
    assert dict(parse_selection(text).items) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("time=", "time= has no value"),
        ("time", "not of the form dim=value"),
        ("lat=10,", "not of the form dim=value"),
        ("=10", "is not a dimension name"),
        ("lat$=10", "is not a dimension name"),
        ("lat=abc", "lat=abc is not a number, a date or a range"),
        ("lat=1:2:3", "lat=1:2:3 is not a number, a date or a range"),
        ("time=2001-13", "not a number, a date or a range"),
        ("time=2001-02-32", "not a number, a date or a range"),
        ("time=2001-06-15T12", "not a number, a date or a range"),
        ("lat=nan", "not a number, a date or a range"),
        ("lat=1e999", "not a number, a date or a range"),
        ("lat=10,lat=20", "lat is given twice"),
        ("x=" + "1" * 600, "the limit is 500"),
        (",".join(f"d{i}=1" for i in range(20)), "the limit is 16"),
    ],
)
def test_malformed_selections_name_the_valid_forms(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_selection(text)
    assert says in info.value.detail
    assert "time=2001-06,lat=-30:30,lon=0:90" in info.value.detail
    assert SELECTION_HELP in info.value.detail


# --- applying ---------------------------------------------------------------------------


@pytest.fixture
def ds(netcdf_file: Path) -> Iterator[xr.Dataset]:
    with xr.open_dataset(netcdf_file) as opened:
        yield opened


def select(obj: xr.Dataset | xr.DataArray, text: str) -> xr.Dataset | xr.DataArray:
    return apply_selection(obj, parse_selection(text))


def test_no_selection_changes_nothing(ds: xr.Dataset) -> None:
    assert select(ds, "all").identical(ds)


def test_a_month_prefix_selects_that_month_and_squeezes(ds: xr.Dataset) -> None:
    june = select(ds.tas, "time=2001-06")
    assert "time" not in june.dims
    assert str(june.time.values)[:7] == "2001-06"
    np.testing.assert_array_equal(june.values, ds.tas.sel(time="2001-06").squeeze().values)


def test_a_year_selects_twelve_months(ds: xr.Dataset) -> None:
    year = select(ds, "time=2001")
    assert year.sizes["time"] == 12
    assert set(year.time.dt.year.values) == {2001}
    assert year.sizes["lat"] == ds.sizes["lat"]  # the whole dataset, every variable
    assert "pr" in year


def test_a_day_inside_a_month_of_monthly_data_matches_it(ds: xr.Dataset) -> None:
    # Monthly means are stamped on the 1st here: 2000-03-01 is that step, 2000-03-02 is none.
    assert str(select(ds.tas, "time=2000-03-01").time.values)[:10] == "2000-03-01"
    with pytest.raises(InvalidInput, match="matches nothing: time runs from 2000-01-01 to 2001-12"):
        select(ds.tas, "time=2000-03-02")


def test_date_ranges_are_inclusive_of_whole_periods(ds: xr.Dataset) -> None:
    assert select(ds, "time=2000-03:2000-05").sizes["time"] == 3
    assert select(ds, "time=2001-06:").sizes["time"] == 7
    assert select(ds, "time=:2000").sizes["time"] == 12
    assert select(ds, "time=2000-02-15:2000-04-01T00:00").sizes["time"] == 2
    assert select(ds, "time=2001:2000").sizes["time"] == 24  # written backwards, same set
    assert select(ds, "time=1990:2100").sizes["time"] == 24
    assert select(ds, "time=1066:2000-01").sizes["time"] == 1  # outside nanosecond range
    # A range keeps the dimension even when one step remains.
    assert select(ds, "time=2000-01:2000-01").sizes["time"] == 1


def test_numeric_ranges_on_ascending_and_descending_axes(ds: xr.Dataset) -> None:
    up = select(ds.tas, "lat=-30:30")
    assert float(up.lat.min()) >= -30
    assert float(up.lat.max()) <= 30
    assert up.sizes["lat"] == int(((ds.lat >= -30) & (ds.lat <= 30)).sum())
    flipped = ds.tas.isel(lat=slice(None, None, -1))  # 90 -> -90, as many files store it
    down = select(flipped, "lat=-30:30")
    assert list(down.lat.values) == sorted(up.lat.values, reverse=True)
    np.testing.assert_array_equal(down.values, up.values[:, ::-1, :])
    assert select(flipped, "lat=30:-30").identical(down)
    assert select(ds.tas, "lon=:90").lon.values.max() <= 90


def test_a_number_picks_the_nearest_point(ds: xr.Dataset) -> None:
    point = select(ds.tas, "lat=44,lon=181")
    assert point.dims == ("time",)
    assert float(point.lat) == 45.0
    assert float(point.lon) == 180.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("depth=3", "there is no dimension depth; the dimensions are time, lat, lon"),
        ("lat=500", "lat=500 matches nothing: lat runs from -85 to 85"),
        ("lat=40:41", "lat=40:41 matches nothing"),
        ("time=2005", "time=2005 matches nothing: time runs from 2000-01-01 to 2001-12-01"),
        ("time=1990:1995", "matches nothing"),
        ("time=2001.5", "time holds dates, so time=2001.5 does not fit"),
        ("lat=2001-06", "lat is numeric, so lat=2001-06 does not fit"),
        ("lat=0:2001-06", "lat is numeric"),
        ("time=2001-02-30", "time=2001-02-30 is not a date of time's calendar (standard"),
    ],
)
def test_selections_that_do_not_fit_say_why(ds: xr.Dataset, text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as info:
        select(ds.tas, text)
    assert says in info.value.detail


def test_a_bare_year_on_a_time_axis_is_a_year(ds: xr.Dataset) -> None:
    # Parsed without the dataset, applied knowing time holds dates; Range(2000.0, ...) too.
    sel = Selection({"time": Range(2000.0, 2000.0)})
    assert apply_selection(ds, sel).sizes["time"] == 12


def test_demo_daily_data_selects_a_day_and_an_hour(tmp_path: Path) -> None:
    daily = generate_demo(tmp_path, scale="small")[2]
    with xr.open_mfdataset(
        daily.glob, data_vars="minimal", coords="minimal", compat="override"
    ) as ds:
        day = select(ds.tasmax, "time=2014-02-28")
        assert "time" not in day.dims
        assert str(day.time.values).startswith("2014-02-28T12:00")
        assert select(ds.tasmax, "time=2014-02-28T12:00").dims == day.dims
        assert select(ds.tasmax, "time=2013-02").sizes["time"] == 28
        assert select(ds.tasmax, "time=2013-12-31:2014-01-01").sizes["time"] == 2
        # Selection stays lazy: nothing is read until asked.
        assert select(ds.tasmax, "time=2014").chunks is not None


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_dates_select_on_a_model_calendar(tmp_path: Path, calendar: str) -> None:
    path = write_calendar_file(tmp_path / "model.nc", calendar)
    with xr.open_dataset(path) as model:
        june = select(model.tas, "time=2001-06")
        assert "time" not in june.dims
        assert (june.time.item().year, june.time.item().month) == (2001, 6)
        assert select(model.tas, "time=2001").sizes["time"] == 12
        assert select(model.tas, "time=2001-03:2001-05").sizes["time"] == 3
        assert select(model.tas, "time=:2000").sizes["time"] == 12
        with pytest.raises(InvalidInput) as info:
            select(model.tas, "time=1990")
        assert "time runs from 2000-01-15 to 2002-12-15" in info.value.detail


def test_the_thirtieth_of_february_is_a_date_on_a_360_day_calendar(tmp_path: Path) -> None:
    with xr.open_dataset(write_calendar_file(tmp_path / "m.nc", "360_day")) as model:
        assert select(model.tas, "time=2001-02-15:2001-02-30").sizes["time"] == 1
    with xr.open_dataset(write_calendar_file(tmp_path / "n.nc", "noleap")) as model:
        with pytest.raises(InvalidInput) as info:
            select(model.tas, "time=2001-02-29")
        assert "not a date of time's noleap calendar" in info.value.detail
