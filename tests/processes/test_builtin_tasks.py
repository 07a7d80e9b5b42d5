"""The built-in processes run as the job engine runs them (the task functions, with a
task context), on model files written here; each result, opened with xarray, equals the
same computation done with xarray directly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from strato.context import Context
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.errors import InvalidInput, PayloadTooLarge
from strato.processes.builtin import tasks
from strato.processes.builtin.reduce import Cancelled
from strato.settings import LogSettings, Settings
from tests.data.model_files import (
    write_calendar_file,
    write_curvilinear_file,
    write_hdf5_without_scales,
    write_packed_file,
)
from tests.processes.builtin_support import TaskCtx, open_result

Task = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.data_dir


@pytest.fixture
def run(settings: Settings, tmp_path: Path) -> Callable[..., tuple[xr.Dataset, TaskCtx]]:
    def call(task: Task, inputs: dict[str, Any], **kw: Any) -> tuple[xr.Dataset, TaskCtx]:
        ctx = TaskCtx(tmp_path / "results" / task.__name__, kw.pop("settings", settings))
        outputs = task(inputs, ctx)
        assert set(outputs) == {"result"}
        assert ctx.reports[-1] == (100, "done")
        percents = [p for p, _ in ctx.reports]
        assert percents == sorted(percents)
        return open_result(ctx, outputs), ctx

    return call


def _source(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_subset_keeps_a_model_calendar(data_dir: Path, run: Any, calendar: str) -> None:
    path = write_calendar_file(data_dir / f"{calendar}.nc", calendar)
    out, _ = run(
        tasks.subset,
        {"href": str(path), "variable": "tas", "domain": {"time": "2001", "lat": [-30, 30]}},
    )
    src = _source(path)
    expected = src.tas.sel(time=slice("2001-01", "2001-12"), lat=slice(-30, 30))
    xr.testing.assert_identical(out.tas.reset_coords(drop=True), expected.reset_coords(drop=True))
    assert out.time.values[0].calendar == calendar
    assert out.time.encoding["calendar"] == calendar


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
@pytest.mark.parametrize("method", ["mean", "ave", "min", "max", "sum", "std"])
def test_reduce_over_time(data_dir: Path, run: Any, calendar: str, method: str) -> None:
    path = write_calendar_file(data_dir / "tas.nc", calendar)
    out, _ = run(
        tasks.reduce, {"href": str(path), "variable": "tas", "axes": ["time"], "method": method}
    )
    src = _source(path)
    expected = getattr(src.tas, "mean" if method == "ave" else method)("time")
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=2e-6)
    assert out.tas.dtype == np.float32
    np.testing.assert_array_equal(out.lat.values, src.lat.values)
    assert "time:" in out.tas.attrs["cell_methods"]


def test_area_weighted_mean_and_std(data_dir: Path, run: Any) -> None:
    path = write_calendar_file(data_dir / "tas.nc", "noleap")
    src = _source(path)
    weighted = src.tas.weighted(np.cos(np.deg2rad(src.lat)))
    for method in ("mean", "std", "sum"):
        out, _ = run(
            tasks.reduce,
            {
                "href": str(path),
                "variable": "tas",
                "axes": ["lat", "lon"],
                "method": method,
                "weighted": True,
            },
        )
        expected = getattr(weighted, method)(("lat", "lon"))
        np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-5)
        assert out.tas.dims == ("time",)


def test_curvilinear_grid(data_dir: Path, run: Any) -> None:
    path = write_curvilinear_file(data_dir / "ocean.nc")
    src = _source(path)
    out, _ = run(tasks.subset, {"href": str(path), "variable": "tos", "domain": {"lat": [25, 40]}})
    inside = (src.lat >= 25) & (src.lat <= 40)
    expected = src.tos.where(inside, drop=True)
    np.testing.assert_array_equal(out.tos.values, expected.values)
    # The latitudes of the block around the points inside stay, masked are only the data.
    rows = np.flatnonzero(inside.any("i").values)
    cols = np.flatnonzero(inside.any("j").values)
    box = {"j": slice(rows[0], rows[-1] + 1), "i": slice(cols[0], cols[-1] + 1)}
    np.testing.assert_array_equal(out.lat.values, src.lat.isel(box).values)

    out, _ = run(
        tasks.reduce, {"href": str(path), "variable": "tos", "axes": ["lat"], "weighted": True}
    )
    expected = src.tos.weighted(np.cos(np.deg2rad(src.lat))).mean(("j", "i"))
    assert out.tos.dims == ("time",)
    np.testing.assert_allclose(out.tos.values, expected.values, rtol=1e-6)


def test_packed_int16_decodes_and_is_not_repacked(data_dir: Path, run: Any) -> None:
    path = write_packed_file(data_dir / "packed.nc")
    src = _source(path)
    out, _ = run(tasks.subset, {"href": str(path), "variable": "tos", "domain": "lat=-20:20"})
    np.testing.assert_array_equal(out.tos.values, src.tos.sel(lat=slice(-20, 20)).values)
    out, _ = run(tasks.reduce, {"href": str(path), "variable": "tos", "axes": ["time"]})
    np.testing.assert_allclose(out.tos.values, src.tos.mean("time").values, rtol=1e-6)
    assert out.tos.dtype == np.float32
    assert "scale_factor" not in out.tos.encoding
    assert np.isnan(out.tos.values[0, :3]).all()


def test_a_file_without_dimension_scales(data_dir: Path, run: Any) -> None:
    path = write_hdf5_without_scales(data_dir / "granule.h5")
    src = _source(path)
    rows, cols = src.radiance.dims
    out, _ = run(
        tasks.subset,
        {"href": str(path), "variable": "radiance", "domain": {rows: {"index": [2, 4]}}},
    )
    np.testing.assert_array_equal(out.radiance.values, src.radiance.isel({rows: slice(2, 5)}))
    out, _ = run(tasks.reduce, {"href": str(path), "variable": "radiance", "axes": [cols]})
    np.testing.assert_allclose(out.radiance.values, src.radiance.mean(cols).values)
    out, _ = run(tasks.reduce, {"href": str(path), "variable": "radiance", "method": "max"})
    assert float(out.radiance) == float(src.radiance.max())


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_climatology_and_anomaly(data_dir: Path, run: Any, calendar: str) -> None:
    path = write_calendar_file(data_dir / "tas.nc", calendar)
    src = _source(path)
    out, _ = run(tasks.climatology, {"href": str(path), "variable": "tas"})
    expected = src.tas.groupby("time.month").mean()
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-6)
    np.testing.assert_array_equal(out.month.values, np.arange(1, 13))
    out, _ = run(
        tasks.climatology,
        {"href": str(path), "variable": "tas", "by": "time.season", "method": "max"},
    )
    expected = src.tas.groupby("time.season").max()
    np.testing.assert_array_equal(out.tas.sel(season=expected.season).values, expected.values)

    out, _ = run(tasks.anomaly, {"href": str(path), "variable": "tas"})
    expected = src.tas.groupby("time.month") - src.tas.groupby("time.month").mean()
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-5, atol=1e-5)
    assert out.tas.dims == src.tas.dims
    assert out.time.values[0].calendar == calendar


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
@pytest.mark.parametrize(("freq", "method"), [("QS-DEC", "mean"), ("YS", "max"), ("1MS", "sum")])
def test_resample(data_dir: Path, run: Any, calendar: str, freq: str, method: str) -> None:
    path = write_calendar_file(data_dir / "tas.nc", calendar)
    src = _source(path)
    out, _ = run(
        tasks.resample, {"href": str(path), "variable": "tas", "freq": freq, "method": method}
    )
    expected = getattr(src.tas.resample(time=freq), method)()
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-6)
    assert list(out.time.values) == list(expected.time.values)
    assert out.time.values[0].calendar == calendar


def test_difference_of_two_files_on_one_grid(data_dir: Path, run: Any) -> None:
    first = write_calendar_file(data_dir / "a.nc", "noleap")
    src = _source(first)
    warmer = src.copy(deep=True)
    warmer["tas"] = warmer.tas + np.float32(1.5)
    second = data_dir / "b.nc"
    warmer.to_netcdf(second, engine="netcdf4")
    operand = {"variable": "tas", "domain": {"lat": [0, 90]}}
    out, _ = run(
        tasks.difference,
        {"a": {"href": str(first), **operand}, "b": {"href": str(second), **operand}},
    )
    expected = src.tas.sel(lat=slice(0, 90)) - warmer.tas.sel(lat=slice(0, 90))
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-6)
    assert out.tas.attrs["units"] == "K"


def test_zarr_results(data_dir: Path, run: Any) -> None:
    path = write_calendar_file(data_dir / "tas.nc", "360_day")
    out, ctx = run(
        tasks.reduce,
        {"href": str(path), "variable": "tas", "axes": ["lon"], "format": "zarr"},
    )
    assert (ctx.result_dir / "result.zarr").is_dir()
    np.testing.assert_allclose(out.tas.values, _source(path).tas.mean("lon").values, rtol=1e-6)


def test_a_served_dataset_by_id(context: Context, data_dir: Path, run: Any) -> None:
    files = [write_calendar_file(data_dir / f"part{i}.nc", "noleap", years=1) for i in (0, 1)]
    # Second file a year later, so the two concatenate along time.
    later = _source(files[1])
    later["time"] = [t.replace(year=t.year + 1) for t in later.time.values]
    files[1].unlink()
    later.to_netcdf(files[1], engine="netcdf4")
    service = DataService(context.sessions, context.settings)
    try:
        service.register("tas-noleap", [str(data_dir / "part*.nc")])
    finally:
        service.close()
    out, _ = run(tasks.climatology, {"dataset": "tas-noleap", "variable": "tas"})
    with xr.open_mfdataset(files, combine="nested", concat_dim="time") as ds:
        expected = ds.tas.groupby("time.month").mean().compute()
    np.testing.assert_allclose(out.tas.values, expected.values, rtol=1e-6)


# --- errors ---------------------------------------------------------------------------


def _field(caught: pytest.ExceptionInfo[InvalidInput]) -> str:
    return str(caught.value.errors[0]["field"])


def test_errors_name_the_input(
    context: Context, data_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    path = write_calendar_file(data_dir / "tas.nc", "noleap")
    ctx = TaskCtx(tmp_path / "r", settings)
    cases: list[tuple[Task, dict[str, Any], str, str]] = [
        (tasks.subset, {"href": str(path), "variable": "pr"}, "variable", "variables are tas"),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "domain": {"lat": "2001-06"}},
            "domain.lat",
            "lat is numeric",
        ),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "domain": {"lat": [500, 600]}},
            "domain.lat",
            "matches nothing",
        ),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "domain": {"time": "1850"}},
            "domain.time",
            "matches nothing",
        ),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "domain": {"depth": 0}},
            "domain.depth",
            "no axis 'depth'",
        ),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "domain": {"lon": {"index": 12}}},
            "domain.lon",
            "outside lon's 12 positions",
        ),
        (tasks.subset, {"href": "/etc/passwd", "variable": "tas"}, "href", "allowed roots"),
        (
            tasks.subset,
            {"href": str(data_dir / "none.nc"), "variable": "tas"},
            "href",
            "matches no file",
        ),
        (tasks.subset, {"dataset": "nothing-here", "variable": "tas"}, "dataset", "no dataset"),
        (
            tasks.reduce,
            {"href": str(path), "variable": "tas", "axes": ["level"]},
            "axes[0]",
            "no axis 'level'",
        ),
        (
            tasks.reduce,
            {"href": str(path), "variable": "tas", "method": "median"},
            "method",
            "one of mean",
        ),
        (
            tasks.reduce,
            {"href": str(path), "variable": "tas", "axes": ["time"], "weighted": True},
            "weighted",
            "reduce over all of them",
        ),
        (
            tasks.reduce,
            {"href": str(path), "variable": "tas", "method": "max", "weighted": True},
            "weighted",
            "has no weights",
        ),
        (tasks.resample, {"href": str(path), "variable": "tas", "freq": "monthly"}, "freq", "1MS"),
        (
            tasks.subset,
            {"href": str(path), "variable": "tas", "format": "csv"},
            "format",
            "netcdf or zarr",
        ),
    ]
    for task, inputs, field, words in cases:
        with pytest.raises(InvalidInput) as caught:
            task(inputs, ctx)
        assert _field(caught) == field, (inputs, caught.value.detail)
        assert words in caught.value.detail, caught.value.detail


def test_difference_refuses_other_grids(data_dir: Path, settings: Settings, tmp_path: Path) -> None:
    first = write_calendar_file(data_dir / "a.nc", "noleap")
    other = write_calendar_file(data_dir / "b.nc", "360_day")
    ctx = TaskCtx(tmp_path / "r", settings)
    a = {"href": str(first), "variable": "tas"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"a": a, "b": {**a, "domain": {"lat": [0, 90]}}}, "b", "not on the same grid"),
        ({"a": a, "b": {"href": str(other), "variable": "tas"}}, "b", "their time differ"),
        ({"a": a}, "b", "must be a JSON object"),
    ]
    for inputs, field, words in cases:
        with pytest.raises(InvalidInput) as caught:
            tasks.difference(inputs, ctx)
        assert _field(caught) == field
        assert words in caught.value.detail


def test_a_domain_over_the_byte_budget_is_refused_before_reading(
    data_dir: Path, tmp_path: Path
) -> None:
    section: dict[str, Any] = {"data": DataSettings(byte_budget=4096)}
    small = Settings(data_dir=data_dir, log=LogSettings(access=False), **section)
    path = write_calendar_file(data_dir / "tas.nc", "noleap")
    ctx = TaskCtx(tmp_path / "r", small)
    inputs = {"href": str(path), "variable": "tas"}
    for task in (tasks.subset, tasks.reduce, tasks.climatology, tasks.anomaly):
        with pytest.raises(PayloadTooLarge, match="more than the limit"):
            task(inputs, ctx)
    with pytest.raises(PayloadTooLarge):
        tasks.resample({**inputs, "freq": "YS"}, ctx)
    with pytest.raises(PayloadTooLarge):
        tasks.difference({"a": inputs, "b": inputs}, ctx)
    # A domain inside the budget is computed.
    tasks.subset({**inputs, "domain": {"time": {"index": 0}}}, ctx)
    assert not list((tmp_path / "r").glob("*.nc"))[1:]


def test_a_cancelled_reduction_stops(data_dir: Path, settings: Settings, tmp_path: Path) -> None:
    path = write_calendar_file(data_dir / "tas.nc", "noleap")
    ctx = TaskCtx(tmp_path / "r", settings, cancel=True)
    with pytest.raises(Cancelled):
        tasks.reduce({"href": str(path), "variable": "tas"}, ctx)
    assert not (tmp_path / "r" / "result.nc").exists()
