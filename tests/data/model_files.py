"""Files written the way climate and ocean models write them, for the field-output tests.

Each writer uses the library models' post-processing uses (netCDF4 through xarray, or
h5py for plain HDF5), so the files carry the encodings real archives hold: cftime
calendars, 2-D latitude/longitude, packing with float32 attributes, variable-length
strings, HDF5 datasets without dimension scales.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cftime
import h5py
import numpy as np
import xarray as xr


def write_calendar_file(path: Path, calendar: str, years: int = 3) -> Path:
    """Monthly means on a model calendar (noleap, 360_day), stamped mid-month."""
    times = [
        cftime.datetime(2000 + i // 12, i % 12 + 1, 15, calendar=calendar)
        for i in range(12 * years)
    ]
    rng = np.random.default_rng(7)
    lat = np.linspace(-75, 75, 6)
    lon = np.arange(0, 360, 30.0)
    tas = (280 + rng.normal(0, 2, (len(times), lat.size, lon.size))).astype("float32")
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), tas, {"units": "K", "standard_name": "air_temperature"})},
        coords={
            "time": ("time", times, {"standard_name": "time", "axis": "T"}),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.7", "source_id": f"MODEL-{calendar}"},
    )
    encoding = {"time": {"units": "days since 2000-01-01", "calendar": calendar}}
    ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def write_curvilinear_file(path: Path, dims: tuple[str, str] = ("j", "i")) -> Path:
    """An ocean field on a rotated curvilinear grid: 2-D lat/lon named by ``coordinates``."""
    ny, nx = 20, 30
    j, i = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    lon = -40 + 2.0 * i + 0.4 * j
    lat = 20 + 1.5 * j + 0.2 * i
    rng = np.random.default_rng(3)
    tos = (15 + 10 * np.cos(np.deg2rad(lat)) + rng.normal(0, 0.3, (3, ny, nx))).astype("float32")
    tos[:, :3, :4] = np.nan  # land
    ds = xr.Dataset(
        {
            "tos": (
                ("time", *dims),
                tos,
                {"units": "degC", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "time": ("time", np.array(["2001-01-16", "2001-02-15", "2001-03-16"], "M8[ns]")),
            "lat": (dims, lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": (dims, lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.7", "grid": "rotated curvilinear"},
    )
    ds.to_netcdf(path, engine="netcdf4", encoding={"tos": {"_FillValue": 1e20}})
    return path


def write_packed_file(path: Path, file_format: str = "NETCDF4") -> Path:
    """int16 packed with float32 scale_factor and add_offset, as many archives store SST."""
    rng = np.random.default_rng(11)
    tos = (12 + rng.normal(0, 8, (4, 10, 16))).astype("float32")
    tos[:, 0, :3] = np.nan
    ds = xr.Dataset(
        {"tos": (("time", "lat", "lon"), tos, {"units": "degC"})},
        coords={
            "time": ("time", np.arange(4.0), {"units": "days since 2001-01-01"}),
            "lat": ("lat", np.linspace(-45, 45, 10), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(0, 337.5, 16), {"units": "degrees_east"}),
        },
    )
    encoding = {
        "tos": {
            "dtype": "int16",
            "scale_factor": np.float32(0.01),
            "add_offset": np.float32(10.0),
            "_FillValue": np.int16(-32767),
        }
    }
    if file_format == "NETCDF4":
        encoding["tos"].update({"zlib": True, "shuffle": True, "chunksizes": (1, 10, 16)})
    ds.to_netcdf(path, engine="netcdf4", format=file_format, encoding=encoding)
    return path


def write_station_file(path: Path) -> Path:
    """Station series with variable-length string names (NetCDF-4 ``string``)."""
    names = np.array(["Hohenpeißenberg", "Mauna Loa", "Zugspitze", "Sonnblick"], dtype=object)
    ds = xr.Dataset(
        {
            "co2": (("station", "time"), np.linspace(380, 420, 4 * 6).reshape(4, 6)),
            "operator": ("station", np.array(["DWD", "NOAA", "UBA", "ZAMG"], dtype=object)),
        },
        coords={
            "station_name": ("station", names, {"cf_role": "timeseries_id"}),
            "time": (
                "time",
                np.array(
                    ["2001-01", "2001-02", "2001-03", "2001-04", "2001-05", "2001-06"], "M8[ns]"
                ),
            ),
        },
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def write_station_zarr(path: Path, zarr_format: int) -> Path:
    """Station names as Zarr variable-length strings (v2 ``vlen-utf8``, v3 ``string``)."""
    with xr.open_dataset(write_station_file(path.with_suffix(".nc"))) as ds:
        ds = ds.load()
    for name in ("station_name", "operator"):
        ds[name] = ds[name].astype(object)  # what xarray writes as variable-length strings
    with warnings.catch_warnings():
        # zarr notes that consolidated metadata is not in the v3 spec; xarray writes it.
        warnings.simplefilter("ignore", UserWarning)
        ds.to_zarr(path, zarr_format=zarr_format, consolidated=True)
    return path


def write_hdf5_without_scales(path: Path) -> Path:
    """Plain HDF5 written with h5py: datasets of different shapes, no dimension scales."""
    with h5py.File(path, "w") as f:
        f.create_dataset("radiance", data=np.arange(200.0).reshape(10, 20), chunks=(5, 20))
        f.create_dataset("flags", data=np.arange(200, dtype="i4").reshape(20, 10))
        f.create_dataset("wavelength", data=np.linspace(0.4, 2.5, 20))
        f.create_dataset("scan_time", data=np.arange(5.0))
        f.create_dataset("kernel", data=np.eye(10, dtype="f4"))
        f.attrs["title"] = "instrument granule"
        geo = f.create_group("geolocation")  # netCDF-C numbers a subgroup's dimensions first
        geo.create_dataset("latitude", data=np.linspace(-10, 10, 200).reshape(10, 20))
        geo.create_dataset("orbit", data=np.arange(7, dtype="i2"))
    return path
