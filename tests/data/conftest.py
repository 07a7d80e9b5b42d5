"""Small CF-encoded NetCDF files, shaped like real model output, for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr


def cf_dataset(
    start: str = "2000-01-01", months: int = 24, nlat: int = 18, nlon: int = 36
) -> xr.Dataset:
    """Monthly fields on a global grid with the encodings real files use."""
    rng = np.random.default_rng(42)
    time = pd.date_range(start, periods=months, freq="MS")
    lat = np.linspace(-90 + 90 / nlat, 90 - 90 / nlat, nlat)
    lon = np.linspace(0, 360, nlon, endpoint=False)
    season = np.cos(2 * np.pi * (time.month.values - 1) / 12)[:, None, None]
    tas = (
        288
        - 40 * np.sin(np.deg2rad(lat))[None, :, None] ** 2
        + 5 * season * np.sin(np.deg2rad(lat))[None, :, None]
        + rng.normal(0, 1, (months, nlat, nlon))
    ).astype("float32")
    pr = rng.gamma(0.8, 3e-5, (months, nlat, nlon)).astype("float32")
    pr[:, 0, :5] = np.nan  # missing values, written as _FillValue
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                tas,
                {
                    "standard_name": "air_temperature",
                    "long_name": "Near-Surface Air Temperature",
                    "units": "K",
                    "cell_methods": "area: time: mean",
                },
            ),
            "pr": (
                ("time", "lat", "lon"),
                pr,
                {
                    "standard_name": "precipitation_flux",
                    "long_name": "Precipitation",
                    "units": "kg m-2 s-1",
                },
            ),
            "sst": (
                ("time", "lat", "lon"),
                (tas - 273.15).astype("float64"),
                {
                    "standard_name": "sea_surface_temperature",
                    "units": "degC",
                },
            ),
        },
        coords={
            "time": ("time", time, {"standard_name": "time", "axis": "T"}),
            "lat": (
                "lat",
                lat,
                {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
            ),
            "lon": (
                "lon",
                lon,
                {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
            ),
        },
        attrs={
            "Conventions": "CF-1.7 CMIP-6.2",
            "source_id": "TEST-1",
            "experiment_id": "historical",
        },
    )
    return ds


def cf_encoding(ds: xr.Dataset) -> dict[str, dict[str, object]]:
    nlat, nlon = ds.sizes["lat"], ds.sizes["lon"]
    return {
        "time": {"units": "days since 1850-01-01", "calendar": "standard", "dtype": "float64"},
        "tas": {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, nlat, nlon)},
        "pr": {"zlib": True, "complevel": 4, "chunksizes": (6, nlat, nlon), "_FillValue": 1e20},
        # Packed: int16 with scale and offset, as many archives store temperatures.
        "sst": {
            "dtype": "int16",
            "scale_factor": 0.01,
            "add_offset": 10.0,
            "_FillValue": -32767,
            "zlib": True,
            "chunksizes": (12, nlat, nlon),
        },
    }


@pytest.fixture
def netcdf_file(tmp_path: Path) -> Path:
    """One NetCDF4 file: zlib, shuffle, chunked, packed int16, fill values."""
    ds = cf_dataset()
    path = tmp_path / "tas_pr_sst_2000-2001.nc"
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=cf_encoding(ds))
    return path


@pytest.fixture
def netcdf_yearly_files(tmp_path: Path) -> list[Path]:
    """Three yearly files of one variable, sharing time units: a glob combines them along time."""
    paths = []
    for year in (2000, 2001, 2002):
        ds = cf_dataset(start=f"{year}-01-01", months=12)
        path = tmp_path / "yearly" / f"tas_mon_{year}.nc"
        path.parent.mkdir(exist_ok=True)
        ds.to_netcdf(path, engine="netcdf4", encoding=cf_encoding(ds))
        paths.append(path)
    return paths


@pytest.fixture
def netcdf3_file(tmp_path: Path) -> Path:
    ds = cf_dataset(months=6)
    path = tmp_path / "classic.nc"
    enc = {
        k: {
            kk: vv
            for kk, vv in v.items()
            if kk in ("units", "calendar", "dtype", "scale_factor", "add_offset", "_FillValue")
        }
        for k, v in cf_encoding(ds).items()
    }
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF3_64BIT", encoding=enc)
    return path
