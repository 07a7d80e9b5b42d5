"""Concurrent first opens and reads of NetCDF/HDF5 datasets in a real server process.

libhdf5 (in the netCDF4 and h5py wheels) is not thread-safe: two request threads opening
different files at once crashed the server (SIGSEGV/SIGBUS), or left a dataset marked
broken with "NetCDF: HDF error" until its files changed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from strato.context import Context
from strato.data.service import DataService
from strato.settings import Settings
from tests.data.conftest import cf_dataset, cf_encoding
from tests.served import Api
from tests.test_up import strato_up

DATASETS = 8
ROUNDS = 10


def write_datasets(root: Path, count: int) -> list[Path]:
    """``count`` NetCDF4 files, each of them a dataset of its own."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        ds = cf_dataset(months=12 + i)
        path = root / f"model{i}.nc"
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=cf_encoding(ds))
        paths.append(path)
    return paths


def register(data_dir: Path, paths: list[Path]) -> list[str]:
    """Registered before the server starts, so its first requests are first opens."""
    ctx = Context.open(Settings(data_dir=data_dir))
    ctx.migrate()
    service = DataService(ctx.sessions, ctx.settings)
    ids = []
    try:
        for path in paths:
            service.register(path.stem, [str(path)])
            ids.append(path.stem)
    finally:
        service.close()
        ctx.close()
    return ids


def hammer(up: Api, ids: list[str], *, plots: bool = True) -> list[tuple[str, int]]:
    """Every dataset's schema, a decoded chunk, a raw chunk and a plot, from many threads."""
    templates = [
        "/datasets/{i}/info",
        "/datasets/{i}/zarr/{v}/c/0/0/0",
        "/datasets/{i}/kerchunk/{v}/0.0.0",
        "/datasets/{i}/zarr/{v}/0.0.0",
    ]
    if plots:  # lazy reads through dask's threads
        templates.append("/datasets/{i}/plot/{v}/timeseries/viridis/lat=0:10")
    # Every dataset's first request at once: the opens are what raced.
    paths = [
        p for template in templates for i in ids for p in [template.format(i=i, v=variable_of(i))]
    ] + ["/api/datasets"] * 4

    def get(path: str) -> tuple[str, int]:
        try:
            with httpx.Client(base_url=up.url, timeout=120) as client:
                return path, client.get(path).status_code
        except httpx.TransportError:
            return path, -1  # the connection dropped: the server is dying

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(get, paths))


def variable_of(dataset_id: str) -> str:
    return dataset_id.split("-")[2] if dataset_id.startswith("cmip6-demo-") else "tas"


def assert_alive_and_ok(up: Api, answers: list[tuple[str, int]]) -> None:
    if any(status == -1 for _, status in answers):
        with contextlib.suppress(subprocess.TimeoutExpired):
            up.proc.wait(timeout=10)
    assert up.proc.poll() is None, (
        f"the server died with {up.proc.returncode}: {up.log.read_text()[-2000:]}"
    )
    failed = [(p, s) for p, s in answers if s != 200]
    assert not failed, failed


def test_concurrent_first_opens_and_reads_do_not_crash(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    paths = write_datasets(data_dir / "files", DATASETS)
    ids = register(data_dir, paths)
    # Two open datasets at most: every request opens one and closes another, as a busy
    # server with many datasets does.
    with strato_up(data_dir, STRATO_DATA_OPEN_DATASETS="2") as up:
        for round_ in range(ROUNDS):
            if round_ % 3 == 2:
                # A new modification time: every dataset is opened again, all at once.
                for path in paths:
                    os.utime(path, ns=(time.time_ns(), time.time_ns() + round_ * 10**9))
                time.sleep(1.1)  # past the cache's once-a-second check of the files
            assert_alive_and_ok(up, hammer(up, ids * 2, plots=round_ == 0))
        states = httpx.get(f"{up.url}/api/datasets").json()
        assert {s["id"]: s["state"] for s in states} == dict.fromkeys(ids, "ok")


def test_demo_generation_racing_readers_does_not_crash(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = register(data_dir, write_datasets(data_dir / "files", 3))
    demo = {"cmip6-demo-tas-mon", "cmip6-demo-pr-mon", "cmip6-demo-tasmax-day"}
    with strato_up(data_dir, STRATO_DATA_DEMO="true", STRATO_DATA_DEMO_SCALE="full") as up:
        deadline = time.monotonic() + 180
        listed: set[str] = set()
        while not demo <= listed and time.monotonic() < deadline:
            assert_alive_and_ok(up, hammer(up, ids + sorted(demo & listed)))
            listed = {s["id"] for s in httpx.get(f"{up.url}/api/datasets", timeout=60).json()}
        assert demo <= listed
        assert_alive_and_ok(up, hammer(up, ids + sorted(demo)))
        states = httpx.get(f"{up.url}/api/datasets").json()
        assert {s["state"] for s in states} == {"ok"}, states
