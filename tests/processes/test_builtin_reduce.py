"""Reductions streamed block by block equal xarray's over the whole array: statistics of
blocks combined (Chan's update for the standard deviation), NaN skipped as xarray skips
it, weights applied per block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.processes.builtin.reduce import reduce_blockwise


@pytest.fixture
def field(tmp_path: Path) -> xr.DataArray:
    rng = np.random.default_rng(5)
    values = (1000 + rng.normal(0, 3, (9, 4, 5, 6))).astype("float32")
    values[2, 1, :, :] = np.nan  # a whole level missing at one time
    values[:, 0, 0, 0] = np.nan  # a column missing at every time
    values[4, :, 2, 3] = np.nan
    ds = xr.Dataset(
        {"t": (("time", "level", "lat", "lon"), values)},
        coords={
            "time": np.arange(9.0),
            "level": [1000.0, 850.0, 500.0, 250.0],
            "lat": np.linspace(-60, 60, 5),
            "lon": np.arange(0, 360, 60.0),
        },
    )
    path = tmp_path / "t.nc"
    ds.to_netcdf(path, engine="netcdf4", encoding={"t": {"zlib": True, "chunksizes": (2, 4, 5, 6)}})
    opened = xr.open_dataset(path, chunks={}, lock=HDF5_LOCK)
    field: xr.DataArray = opened.t
    return field


@pytest.mark.parametrize("method", ["mean", "min", "max", "sum", "std"])
@pytest.mark.parametrize(
    "dims", [("time",), ("lat", "lon"), ("time", "level", "lat", "lon"), ("level",)]
)
@pytest.mark.parametrize("block_bytes", [1, 3 * 4 * 5 * 6 * 4, 1 << 30])
def test_blocks_combine_to_the_whole(
    field: xr.DataArray, method: str, dims: tuple[str, ...], block_bytes: int
) -> None:
    done: list[float] = []
    got = reduce_blockwise(field, dims, method, block_bytes=block_bytes, progress=done.append)
    # Against xarray in float64: dask's float32 std of values near 1000 is off in the
    # fifth digit, which this reduction (accumulating in float64) is not.
    expected = getattr(field.astype("float64"), method)(dims).compute()
    assert got.dims == expected.dims
    np.testing.assert_allclose(got.values, expected.values, rtol=2e-6, atol=1e-6)
    assert done[-1] == 1.0
    if block_bytes == 1:
        assert len(done) == 5  # whole chunks of two times per block


@pytest.mark.parametrize("method", ["mean", "sum", "std"])
def test_weighted_by_blocks(field: xr.DataArray, method: str) -> None:
    weights = np.cos(np.deg2rad(field.lat))
    got = reduce_blockwise(
        field, ("time", "lat", "lon"), method, weights=weights.drop_vars("lat"), block_bytes=1
    )
    expected = getattr(field.weighted(weights), method)(("time", "lat", "lon")).compute()
    np.testing.assert_allclose(got.values, expected.values, rtol=2e-6)


def test_a_large_offset_keeps_its_digits() -> None:
    # Sums of squares about zero would lose every digit of a 1e-3 spread around 1e4.
    values = (1e4 + np.tile([-1e-3, 1e-3], 5000)).reshape(100, 100)
    da = xr.DataArray(values, dims=("time", "x"))
    got = reduce_blockwise(da, ("time", "x"), "std", block_bytes=800)
    assert float(got) == pytest.approx(1e-3, rel=1e-6)
