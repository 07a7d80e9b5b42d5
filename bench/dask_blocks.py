"""Chunks of a multi-file dataset through /zarr: the dask graph walker against dask's scheduler.

What is compared. A dataset of ``--files`` NetCDF4 files (default 60, one daily step of
a 0.5-degree grid each, zlib) is registered in a data service twice: once with
``data.fast_dask_blocks`` on (strato.data.zarr_views.fast_dask_blocks runs only the
tasks of the blocks a chunk touches) and once off (``variable[region].values``: dask
optimises and orders the whole graph per chunk). Every chunk of the variable is read
through the service's Zarr view (what ``/datasets/ID/zarr/`` answers, without HTTP):
once untimed, then ``--rounds`` times, alternating the two. The median milliseconds
per chunk are printed, with their ratio. Every chunk read one way is compared with the
other's bytes; any difference fails the run.

In process, single-threaded, so the figure is the server's own work per chunk; the
machine's load still shows in it.

    .venv/bin/python bench/dask_blocks.py [--files 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from strato.context import Context
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.settings import Settings

VAR = "tas"


def write_files(directory: Path, files: int) -> None:
    rng = np.random.default_rng(1)
    lat = np.linspace(-89.75, 89.75, 360)
    lon = np.linspace(0.25, 359.75, 720)
    for day in range(files):
        path = directory / f"tas_{day:04d}.nc"
        if path.exists():
            continue
        data = (280 + rng.normal(0, 5, (1, lat.size, lon.size))).astype("float32")
        ds = xr.Dataset(
            {VAR: (("time", "lat", "lon"), data, {"units": "K"})},
            coords={
                "time": ("time", [day], {"units": "days since 2000-01-01"}),
                "lat": lat,
                "lon": lon,
            },
        )
        ds.to_netcdf(path, encoding={VAR: {"zlib": True, "complevel": 4}})


def open_service(root: Path, files_dir: Path, fast: bool) -> tuple[Context, DataService]:
    settings = Settings(data_dir=root)
    section = DataSettings.of(settings)
    section.demo = False
    section.allowed_roots = [files_dir]
    section.fast_dask_blocks = fast
    ctx = Context.open(settings)
    ctx.migrate()
    service = DataService(ctx.sessions, settings)
    service.register("tas", [str(files_dir / "tas_*.nc")])
    return ctx, service


def chunk_keys(service: DataService) -> list[str]:
    view = service.cache.get("tas").zarr
    shape = service.cache.get("tas").decoded[VAR].shape
    chunks = view.chunk_shape(VAR)
    counts = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    return [
        f"{VAR}/{t}.{i}.{j}"
        for t in range(counts[0])
        for i in range(counts[1])
        for j in range(counts[2])
    ]


def read_all(service: DataService, keys: list[str]) -> tuple[float, list[bytes]]:
    view = service.cache.get("tas").zarr
    t0 = time.perf_counter()
    got = [view.get(key, 2) for key in keys]
    return (time.perf_counter() - t0) * 1000 / len(keys), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files_dir = Path(tempfile.gettempdir()) / f"strato-bench-dask-blocks-{args.files}"
    files_dir.mkdir(exist_ok=True)
    write_files(files_dir, args.files)
    with tempfile.TemporaryDirectory(prefix="strato-bench-dask-") as tmp:
        opened = {
            fast: open_service(Path(tmp) / ("on" if fast else "off"), files_dir, fast)
            for fast in (True, False)
        }
        keys = chunk_keys(opened[True][1])
        # A first read of each (not timed): the walker materialises the graph once per
        # opened dataset, dask's caches fill; a served dataset pays that once too.
        first = {fast: read_all(service, keys)[0] for fast, (_, service) in opened.items()}
        times: dict[bool, list[float]] = {True: [], False: []}
        failed = False
        for rnd in range(args.rounds):
            got: dict[bool, list[bytes]] = {}
            for fast in (True, False) if rnd % 2 == 0 else (False, True):
                ms, got[fast] = read_all(opened[fast][1], keys)
                times[fast].append(ms)
            if got[True] != got[False]:
                failed = True
                print(f"round {rnd + 1}: the two ways gave different chunk bytes", file=sys.stderr)
        for ctx, service in opened.values():
            service.close()
            ctx.close()
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(
        f"{VAR}: {args.files} files, {len(keys)} chunks, {args.rounds} rounds; ms per chunk, "
        "median of rounds"
    )
    print(f"fast_dask_blocks on : {on:7.2f}  (rounds {', '.join(f'{t:.2f}' for t in times[True])})")
    print(
        f"fast_dask_blocks off: {off:7.2f}  (rounds {', '.join(f'{t:.2f}' for t in times[False])})"
    )
    print(f"off / on: {off / on:.1f}x")
    print(f"first read (not in the medians): on {first[True]:.2f}, off {first[False]:.2f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
