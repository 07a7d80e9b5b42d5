"""Writing a computed result to the job's result directory as NetCDF or Zarr.

The result is computed before it is written: the HDF5 lock is held around the NetCDF
write (libhdf5 is not thread-safe, :mod:`strato.data.datasets.hdf5`), and a lazy result
computed inside it would deadlock on the reads that take the same lock in dask's
threads. Encodings inherited from the source (packing, its chunk sizes, its fill value)
describe the source, not the result: a mean packed as int16 would be rounded. They are
dropped; only the time axis keeps its units and calendar, so a noleap or 360_day axis
stays one.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.processes.builtin.domain import FORMATS, Format

_KEPT_COORD_ENCODING = ("units", "calendar")


def write_result(
    ds: xr.Dataset, result_dir: Path, fmt: Format, name: str = "result"
) -> dict[str, Any]:
    """Write ``ds`` (computed) and return the OGC output: a reference to the file."""
    result_dir.mkdir(parents=True, exist_ok=True)
    ds = ds.copy()
    encoding: dict[str, dict[str, Any]] = {}
    for var_name, var in ds.variables.items():
        if var_name in ds.data_vars:
            var.encoding = {}
            if fmt == "netcdf" and var.dtype.kind in "fiu" and var.ndim > 0:
                encoding[str(var_name)] = {"zlib": True, "complevel": 1}
        else:
            var.encoding = {k: v for k, v in var.encoding.items() if k in _KEPT_COORD_ENCODING}
        if var.dtype.kind == "f":
            # A NaN in the data is written as the fill value CF readers expect.
            encoding.setdefault(str(var_name), {})["_FillValue"] = (
                (np.float32(np.nan) if var.dtype == np.float32 else np.nan)
                if var_name in ds.data_vars
                else None
            )
    if fmt == "netcdf":
        path = result_dir / f"{name}.nc"
        with HDF5_LOCK:
            ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)
    else:
        path = result_dir / f"{name}.zarr"
        with warnings.catch_warnings():
            # zarr notes that consolidated metadata is not in the v3 spec; xarray writes it.
            warnings.simplefilter("ignore", UserWarning)
            ds.to_zarr(path, mode="w", encoding=encoding, consolidated=True)
    return {"href": path.name, "type": FORMATS[fmt]}
