"""The ``reduce`` process against only reading the same data (issue 14's goal: >= 0.7x).

One float32 variable (``time, lat, lon``, zlib level 1 with byte shuffle, a chunk per
time step, as model output is written) of about ``--gib`` GiB is written once to a
temporary directory; then, alternating, (a) every value is read and decompressed through
xarray the way the task reads it (block by block along time, one read after the other)
and (b) the ``reduce`` task computes the mean over time and writes its NetCDF result.
Both read from the page cache after a first pass. Throughput is uncompressed bytes of the
variable per second; the ratio is reduce's over reading's (medians over ``--rounds``).

    python bench/processes_reduce.py [--gib 1.0] [--rounds 3] [--method mean]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from strato.data.datasets.hdf5 import HDF5_LOCK
from strato.data.settings import DataSettings
from strato.processes.builtin import tasks
from strato.processes.builtin.reduce import BLOCK_BYTES, _blocks
from strato.settings import LogSettings, Settings

NLAT, NLON = 721, 1440  # a quarter-degree global grid: 4.0 MiB per time step


class BenchCtx:
    """A task context: the job engine's members, progress discarded."""

    def __init__(self, result_dir: Path, settings: Settings) -> None:
        self.job_id = "bench"
        self.result_dir = result_dir
        self.settings = settings

    def progress(self, percent: int, message: str = "") -> None:
        pass

    def cancelled(self) -> bool:
        return False


def write_field(path: Path, steps: int) -> None:
    """Written with netCDF4 a time step at a time, so a large file never sits in memory."""
    import netCDF4

    rng = np.random.default_rng(1)
    lat = np.linspace(-90, 90, NLAT)
    base = (250 + 40 * np.cos(np.deg2rad(lat)))[:, None].astype("float32")
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", NLAT)
        nc.createDimension("lon", NLON)
        nc.createVariable("time", "f8", ("time",)).units = "hours since 2000-01-01"
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = np.arange(NLON) * 0.25
        tas = nc.createVariable(
            "tas",
            "f4",
            ("time", "lat", "lon"),
            zlib=True,
            complevel=1,
            shuffle=True,
            chunksizes=(1, NLAT, NLON),
        )
        tas.units = "K"
        for t in range(steps):
            noise = rng.normal(0, 2, (NLAT, NLON)).astype("float32")
            # Rounded to 1/16 K, as archived fields are: raw noise would not compress.
            tas[t] = np.round((base + noise) * 16) / 16
            nc["time"][t] = float(t)


def read_only(path: Path) -> float:
    start = time.perf_counter()
    with xr.open_dataset(path, chunks={}, lock=HDF5_LOCK) as ds:
        da = ds["tas"]
        total = 0
        for sl in _blocks(da, BLOCK_BYTES):
            total += np.asarray(da.isel(time=sl).values).nbytes
    elapsed = time.perf_counter() - start
    assert total == da.size * 4
    return elapsed


def reduce_once(path: Path, settings: Settings, out: Path, method: str) -> float:
    ctx = BenchCtx(out, settings)
    start = time.perf_counter()
    tasks.reduce({"href": str(path), "variable": "tas", "axes": ["time"], "method": method}, ctx)
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--method", default="mean")
    args = parser.parse_args(argv)
    steps = max(2, int(args.gib * (1 << 30) / (NLAT * NLON * 4)))
    nbytes = steps * NLAT * NLON * 4
    with tempfile.TemporaryDirectory(prefix="strato-bench-reduce-") as tmp:
        root = Path(tmp)
        path = root / "tas.nc"
        began = time.perf_counter()
        write_field(path, steps)
        print(
            f"wrote {nbytes / (1 << 30):.2f} GiB ({steps} steps) as "
            f"{path.stat().st_size / (1 << 30):.2f} GiB on disk in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
        section: dict[str, Any] = {"data": DataSettings(byte_budget=max(nbytes * 2, 1 << 30))}
        settings = Settings(
            data_dir=root,
            log=LogSettings(access=False),
            **section,
        )
        read_only(path)  # into the page cache
        reads, reduces = [], []
        for i in range(args.rounds):
            reads.append(read_only(path))
            reduces.append(reduce_once(path, settings, root / f"out{i}", args.method))
            print(f"round {i + 1}: read {reads[-1]:.2f} s, reduce {reduces[-1]:.2f} s", flush=True)
    read_s, reduce_s = statistics.median(reads), statistics.median(reduces)
    mib = nbytes / (1 << 20)
    print(f"variable: {mib:.0f} MiB float32; reduce: {args.method} over time")
    print(f"read+decompress: {mib / read_s:.0f} MiB/s (median {read_s:.2f} s)")
    print(f"reduce:          {mib / reduce_s:.0f} MiB/s (median {reduce_s:.2f} s)")
    print(f"ratio reduce/read: {read_s / reduce_s:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main(sys.argv[1:])
