"""PNG plots from real files, read back as images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread

from strato.data.analysis.plots import KINDS, render_plot
from strato.data.demo.collection import generate_demo
from strato.data.model.selection import parse_selection
from strato.errors import InvalidInput, NotFound, PayloadTooLarge
from tests.data.model_files import write_curvilinear_file

PNG = b"\x89PNG\r\n\x1a\n"
BUDGET = 1 << 30
GREY = 0.85  # the colour of missing values


@pytest.fixture
def ds(netcdf_file: Path) -> Iterator[xr.Dataset]:
    # Lazily, dask-backed, as the service opens registered files.
    with xr.open_dataset(netcdf_file, chunks={}) as opened:
        yield opened


@pytest.fixture
def daily(tmp_path: Path) -> Iterator[xr.Dataset]:
    demo = generate_demo(tmp_path, scale="small")[2]
    combine = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}
    with xr.open_mfdataset(demo.glob, **combine) as opened:
        yield opened


def plot(
    ds: xr.Dataset, var: str, kind: str, cmap: str = "viridis", sel: str = "all", **kw: object
) -> bytes:
    return render_plot(ds, var, kind, cmap, parse_selection(sel), byte_budget=BUDGET, **kw)  # type: ignore[arg-type]


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(PNG)
    return imread(io.BytesIO(png), format="png")


def assert_drawn(png: bytes, width: int = 800, height: int = 450) -> np.ndarray:
    image = pixels(png)
    assert image.shape[:2] == (height, width)
    colours = np.unique(image.reshape(-1, image.shape[2]), axis=0)
    assert len(colours) > 20, "the image is (nearly) blank"
    return image


@pytest.mark.parametrize(
    ("var", "kind", "cmap", "sel"),
    [
        ("tas", "map", "viridis", "all"),
        ("tas", "map", "viridis", "time=2001-06"),
        ("sst", "map", "RdBu_r", "time=2000-01,lat=-45:45,lon=0:180"),
        ("tas", "timeseries", "viridis", "lat=-30:30"),
        ("pr", "timeseries", "Greys", "all"),
        ("pr", "hovmoller", "Blues", "all"),
        ("tas", "hovmoller", "magma", "time=2000-06:2001-05,lon=90:180"),
    ],
)
def test_each_kind_draws_a_png_of_the_asked_size(
    ds: xr.Dataset, var: str, kind: str, cmap: str, sel: str
) -> None:
    assert_drawn(plot(ds, var, kind, cmap, sel))


def test_the_size_follows_width_height_and_dpi(ds: xr.Dataset) -> None:
    assert_drawn(plot(ds, "tas", "map", width=6, height=3, dpi=50), width=300, height=150)
    assert_drawn(plot(ds, "tas", "timeseries", width=10, height=5, dpi=120), width=1200, height=600)


def test_colormaps_and_selections_change_the_image(ds: xr.Dataset) -> None:
    base = pixels(plot(ds, "tas", "map", "viridis", "time=2000-01"))
    other_cmap = pixels(plot(ds, "tas", "map", "magma", "time=2000-01"))
    other_time = pixels(plot(ds, "tas", "map", "viridis", "time=2000-07"))
    other_area = pixels(plot(ds, "tas", "map", "viridis", "time=2000-01,lat=0:90"))
    for changed in (other_cmap, other_time, other_area):
        assert np.abs(changed - base).mean() > 0.005
    line = pixels(plot(ds, "tas", "timeseries", "viridis"))
    assert np.abs(pixels(plot(ds, "tas", "timeseries", "viridis", "lat=0:90")) - line).mean() > 0


def test_the_map_defaults_to_the_first_time_step(ds: xr.Dataset) -> None:
    assert plot(ds, "tas", "map") == plot(ds, "tas", "map", sel="time=2000-01")


def test_missing_values_show_grey(ds: xr.Dataset) -> None:
    def grey(png: bytes) -> int:
        rgb = pixels(png)[..., :3]
        return int(np.all(np.abs(rgb - GREY) < 0.01, axis=-1).sum())

    with_gaps = plot(ds, "pr", "map", "YlGnBu", "time=2000-01")
    filled = ds.assign(pr=ds.pr.fillna(0))
    without = plot(filled, "pr", "map", "YlGnBu", "time=2000-01")
    assert grey(with_gaps) > grey(without) + 50


def test_a_selection_with_only_missing_values_still_draws(ds: xr.Dataset) -> None:
    # pr is missing on the southernmost row at the first five longitudes.
    empty = "lat=-90:-80,lon=0:40"
    for kind in KINDS:
        assert pixels(plot(ds, "pr", kind, "viridis", empty)).shape == (450, 800, 4)


def test_packed_daily_demo_data(daily: xr.Dataset) -> None:
    assert_drawn(plot(daily, "tasmax", "map", "inferno", "time=2013-07-01"))
    assert_drawn(plot(daily, "tasmax", "timeseries", "viridis", "lat=30:60"))
    assert_drawn(plot(daily, "tasmax", "hovmoller", "RdYlBu_r", "time=2014-01:2014-03"))


def test_concurrent_renders_match_serial_ones(ds: xr.Dataset) -> None:
    jobs = [
        ("tas", "map", "viridis"),
        ("pr", "hovmoller", "Blues"),
        ("tas", "timeseries", "magma"),
    ] * 2
    serial = [plot(ds, *job) for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: plot(ds, *job), jobs))
    assert parallel == serial


# --- errors -----------------------------------------------------------------------------


def test_unknown_variable_is_not_found(ds: xr.Dataset) -> None:
    with pytest.raises(NotFound, match=r"'nope'.*the variables are tas, pr, sst"):
        plot(ds, "nope", "map")


def test_unknown_kind_lists_the_kinds(ds: xr.Dataset) -> None:
    with pytest.raises(
        InvalidInput, match="unknown plot kind 'pie'; the kinds are map, timeseries, hovmoller"
    ):
        plot(ds, "tas", "pie")


def test_unknown_colormap_suggests_close_names(ds: xr.Dataset) -> None:
    with pytest.raises(InvalidInput, match="unknown colormap 'viridiss'; did you mean viridis"):
        plot(ds, "tas", "map", "viridiss")
    with pytest.raises(InvalidInput, match=r"did you mean.*RdBu_r"):
        plot(ds, "tas", "map", "rdbu_r")
    with pytest.raises(InvalidInput, match="any matplotlib colormap name works"):
        plot(ds, "tas", "map", "zzzzzz")


def test_a_map_with_extra_dimensions_says_what_to_select(ds: xr.Dataset) -> None:
    levels = ds.assign(ta=ds.tas.expand_dims(plev=[100000.0, 85000.0, 50000.0], axis=1))
    with pytest.raises(InvalidInput) as info:
        plot(levels, "ta", "map")
    assert "plev (3)" in info.value.detail
    assert "e.g. plev=100000" in info.value.detail
    assert_drawn(plot(levels, "ta", "map", sel="plev=85000"))
    with pytest.raises(InvalidInput, match=r"still has the dimensions time \(24\)"):
        plot(levels, "ta", "map", sel="time=2000:2001,plev=85000")


def test_time_plots_need_several_time_steps(ds: xr.Dataset) -> None:
    for kind in ("timeseries", "hovmoller"):
        with pytest.raises(InvalidInput, match="the selection leaves one; select a range instead"):
            plot(ds, "tas", kind, sel="time=2001-06")
    with pytest.raises(InvalidInput, match="needs a time dimension"):
        plot(ds.isel(time=0, drop=True), "tas", "timeseries")


def test_a_map_needs_latitude_and_longitude(ds: xr.Dataset) -> None:
    with pytest.raises(InvalidInput, match="a map needs latitude and longitude"):
        plot(ds, "tas", "map", sel="lat=10")


def test_selection_errors_pass_through(ds: xr.Dataset) -> None:
    with pytest.raises(InvalidInput, match="there is no dimension depth"):
        plot(ds, "tas", "map", sel="depth=3")


def test_the_budget_counts_what_the_plot_reads(ds: xr.Dataset) -> None:
    one_step = 18 * 36 * 4  # float32
    budget = one_step + 100
    render_plot(ds, "tas", "map", "viridis", parse_selection("time=2000-06"), byte_budget=budget)
    with pytest.raises(PayloadTooLarge) as info:
        render_plot(ds, "tas", "timeseries", "viridis", parse_selection("all"), byte_budget=budget)
    assert info.value.detail == (
        f"the timeseries of tas would read 60.8 KiB ({24 * one_step} bytes), "
        f"more than the limit of 2.6 KiB ({budget} bytes)"
    )


def test_absurd_image_sizes_are_refused(ds: xr.Dataset) -> None:
    with pytest.raises(InvalidInput, match="each side must be between 16 and 4096"):
        plot(ds, "tas", "map", width=100, height=100, dpi=300)
    with pytest.raises(InvalidInput, match="each side must be between"):
        plot(ds, "tas", "map", width=0, height=4)


def test_curvilinear_grid_with_missing_positions_is_drawn(tmp_path: Path) -> None:
    # Ocean models leave land points without a position: NaN latitude and longitude.
    path = write_curvilinear_file(tmp_path / "tos.nc")
    with xr.open_dataset(path) as source:
        ds = source.load()
    ds["lat"][:2, :5] = np.nan
    ds["lon"][:2, :5] = np.nan
    assert_drawn(plot(ds, "tos", "map", sel="time=2001-03"))
    assert_drawn(plot(ds, "tos", "timeseries"))


def test_hovmoller_of_a_curvilinear_grid_says_what_it_needs(tmp_path: Path) -> None:
    with (
        xr.open_dataset(write_curvilinear_file(tmp_path / "tos.nc")) as ds,
        pytest.raises(InvalidInput, match="needs a latitude dimension"),
    ):
        plot(ds, "tos", "hovmoller")
