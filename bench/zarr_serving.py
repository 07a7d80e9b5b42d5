"""Serving a NetCDF4 dataset as Zarr over HTTP: strato against xpublish, side by side.

What is compared. One realistic dataset -- daily near-surface air temperature
``tas`` on a global 0.5-degree grid, float32, CF attributes, written as NetCDF4
with zlib level 4 + shuffle in chunks of one time step -- is served by

* the reference, xpublish 0.5 with the xpublish-zarr plugin (Zarr v3), opened
  the way xpublish users do (``xr.open_dataset(path, chunks={})``) and run by
  uvicorn in its own process;
* strato (``strato api``) in its own process, through its processed Zarr
  store ``/datasets/ID/zarr/`` read as Zarr v3 and as Zarr v2, and through its
  raw passthrough ``/datasets/ID/kerchunk/`` (the file's own compressed chunks,
  addressed by byte range, Zarr v2).

How. The same client code reads each endpoint: ``xr.open_dataset(url,
engine="zarr", zarr_format=F, chunks=None)`` then ``ds["tas"].values`` (the
whole variable), timed from the open to the last byte. Every endpoint is warmed
up once on a small slice, then the endpoints are read in rounds (in an order
shuffled each round, with a fixed seed), five times each (``--rounds``), and the median
is reported as MB/s of uncompressed variable bytes (1 MB = 10**6 bytes). The client's
kernel time per read is printed too, and the server's CPU seconds per read (its process
and children): what a change to the server alone saves. Every read is compared
with the values read locally from the NetCDF file (NaN-aware); any difference fails
the run. The ratios strato / xpublish are printed with their goals (3x for /zarr,
5x for /kerchunk); a missed goal prints ``GOAL MISSED`` but does not fail the run.

The ceiling. When nginx is installed, a copy of strato's /kerchunk store (the same
metadata and raw chunk bytes, as files) is served by nginx with sendfile and read
the same way: the fastest any server of those bytes can be with this client on this
machine, printed as its ratio to xpublish and strato's share of it.

The client's memory. Each read fills two 757 MB arrays. By default the client's
allocator (glibc) keeps what it frees, so one read's arrays reuse the pages of the
last (``--client-allocator default`` leaves glibc as it is). Why: on a virtual machine
whose host takes back the memory a guest frees (virtio-balloon free page reporting,
as on this one), every page a read faults in again costs a host fault, and which reads
pay it depends on timing: the same read from the same server took 0.2 s or 3.9 s of
kernel time, for xpublish up to 3.7 s, whatever served the chunks. Keeping the pages
takes that out of every endpoint's figure alike; the client code does not change.

Memory. While reading, each server's resident set size (its process and all
children) is sampled every 0.1 s and the peak printed. Then a second file whose
one variable is larger than 4 GB uncompressed (float32 1100 x 1024 x 1024,
mostly constant so it is small on disk and quick to write) is registered in
strato and read whole, chunk by chunk, through /zarr and /kerchunk
(``chunks={}`` then a dask ``mean``), while strato's RSS is sampled; the peak
must stay below 1 GB and the mean must match the one computed locally.

Files are generated once under ``$TMPDIR/strato-bench-zarr`` (``--workdir`` to
change) and reused. ``--quick`` uses smaller files for a fast check (then the
big variable is not above 4 GB). Only 127.0.0.1 is contacted; both servers are
stopped before the script exits.

    .venv/bin/python bench/zarr_serving.py [--quick] [--workdir DIR] [--setting KEY=VALUE]

``--setting data.fast_raw_chunks=false`` (repeatable) serves strato with that setting, as
``STRATO_DATA_FAST_RAW_CHUNKS=false`` would: how the fast paths are measured off.
``--server-src PATH`` runs strato (``data add`` and ``api``) from another checkout's
``src/``, put ahead of the installed one on PYTHONPATH: two versions compared by
bench/paired.py with the same client.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import psutil  # type: ignore[import-untyped]
import xarray as xr

from _serving import add_setting_option, nginx_config, nginx_exe, setting_env

ROUNDS = 5
MB = 1e6
ZARR_GOAL = 3.0
KERCHUNK_GOAL = 5.0
RSS_LIMIT = 1e9
VAR = "tas"
BIG_VAR = "big"
XPUBLISH_ID = "bench"
STRATO_ID = "tas"
STRATO_BIG_ID = "big"
XPUBLISH_LABEL = "xpublish-zarr (v3)"
NGINX_LABEL = "nginx static /kerchunk"
BIG_CLIENT_THREADS = 8
START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sizes:
    days: int  # time steps of the 0.5-degree tas file
    big_steps: int  # time steps of the 1024 x 1024 big variable

    @property
    def tas_name(self) -> str:
        return f"tas_day_0p5deg_{self.days}d_v1.nc"

    @property
    def big_name(self) -> str:
        return f"big_{self.big_steps}x1024x1024_v1.nc"


FULL = Sizes(days=730, big_steps=1100)
QUICK = Sizes(days=60, big_steps=120)


def _bilinear(lo: np.ndarray, ny: int, nx: int) -> np.ndarray:
    yi = np.linspace(0, lo.shape[0] - 1, ny)
    xi = np.linspace(0, lo.shape[1] - 1, nx)
    y0 = np.minimum(yi.astype(int), lo.shape[0] - 2)
    x0 = np.minimum(xi.astype(int), lo.shape[1] - 2)
    fy = (yi - y0)[:, None]
    fx = (xi - x0)[None, :]
    a, b = lo[y0][:, x0], lo[y0][:, x0 + 1]
    c, d = lo[y0 + 1][:, x0], lo[y0 + 1][:, x0 + 1]
    out: np.ndarray = a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy
    return out


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def make_tas(path: Path, days: int) -> None:
    """Daily-mean surface air temperature, CMIP-like: a smooth climatology, a seasonal
    cycle, synoptic-scale weather and small-scale noise, so it compresses like real data."""
    import netCDF4

    nlat, nlon = 360, 720
    lat = np.linspace(-89.75, 89.75, nlat)
    lon = np.linspace(0.25, 359.75, nlon)
    latr = np.deg2rad(lat)[:, None]
    lonr = np.deg2rad(lon)[None, :]
    climatology = 300.0 - 50.0 * np.sin(latr) ** 2 + 3.0 * np.cos(3 * lonr) * np.cos(latr)
    rng = np.random.default_rng(20240101)

    def write(tmp: Path) -> None:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.setncatts(
                {
                    "Conventions": "CF-1.7 CMIP-6.2",
                    "title": "Synthetic daily near-surface air temperature (strato benchmark)",
                    "institution": "strato benchmark",
                    "source": "synthetic",
                    "frequency": "day",
                    "table_id": "day",
                    "variable_id": "tas",
                    "grid_label": "gr",
                    "nominal_resolution": "50 km",
                }
            )
            nc.createDimension("time", None)
            nc.createDimension("lat", nlat)
            nc.createDimension("lon", nlon)
            nc.createDimension("bnds", 2)
            t = nc.createVariable("time", "f8", ("time",))
            t.setncatts(
                {
                    "standard_name": "time",
                    "long_name": "time",
                    "units": "days since 2000-01-01 00:00:00",
                    "calendar": "proleptic_gregorian",
                    "axis": "T",
                    "bounds": "time_bnds",
                }
            )
            tb = nc.createVariable("time_bnds", "f8", ("time", "bnds"))
            for name, values, units, axis, std in (
                ("lat", lat, "degrees_north", "Y", "latitude"),
                ("lon", lon, "degrees_east", "X", "longitude"),
            ):
                v = nc.createVariable(name, "f8", (name,))
                v.setncatts(
                    {
                        "standard_name": std,
                        "long_name": std,
                        "units": units,
                        "axis": axis,
                        "bounds": f"{name}_bnds",
                    }
                )
                v[:] = values
                b = nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))
                b[:] = np.stack([values - 0.25, values + 0.25], axis=1)
            tas = nc.createVariable(
                VAR,
                "f4",
                ("time", "lat", "lon"),
                zlib=True,
                complevel=4,
                shuffle=True,
                chunksizes=(1, nlat, nlon),
                fill_value=np.float32(1e20),
            )
            tas.setncatts(
                {
                    "standard_name": "air_temperature",
                    "long_name": "Near-Surface Air Temperature",
                    "units": "K",
                    "cell_methods": "area: time: mean",
                    "coordinates": "height",
                    "missing_value": np.float32(1e20),
                }
            )
            h = nc.createVariable("height", "f8", ())
            h.setncatts({"standard_name": "height", "units": "m", "axis": "Z", "positive": "up"})
            h.assignValue(2.0)
            for i in range(days):
                season = 10.0 * np.sin(2 * np.pi * i / 365.25) * np.sin(latr)
                weather = 4.0 * _bilinear(rng.standard_normal((19, 37)), nlat, nlon)
                noise = 0.3 * rng.standard_normal((nlat, nlon))
                tas[i] = (climatology + season + weather + noise).astype(np.float32)
                t[i] = i + 0.5
                tb[i] = [i, i + 1]

    _write_atomically(path, write)


def big_step(i: int) -> np.ndarray:
    """One time step of the big variable: a constant per step and one varying row."""
    a = np.full((1024, 1024), 250.0 + 0.01 * (i % 1000), dtype=np.float32)
    a[0] += np.arange(1024, dtype=np.float32) * np.float32(0.001)
    return a


def big_expected_mean(steps: int) -> float:
    return float(np.mean([big_step(i).mean(dtype=np.float64) for i in range(steps)]))


def make_big(path: Path, steps: int) -> None:
    import netCDF4

    def write(tmp: Path) -> None:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.Conventions = "CF-1.7"
            nc.title = "Synthetic variable larger than 4 GB uncompressed (strato benchmark)"
            for name, n in (("time", steps), ("y", 1024), ("x", 1024)):
                nc.createDimension(name, n)
            t = nc.createVariable("time", "f8", ("time",))
            t.units = "days since 2000-01-01"
            t.calendar = "proleptic_gregorian"
            t[:] = np.arange(steps, dtype=np.float64)
            v = nc.createVariable(
                BIG_VAR,
                "f4",
                ("time", "y", "x"),
                zlib=True,
                complevel=1,
                shuffle=True,
                chunksizes=(1, 1024, 1024),
            )
            v.units = "K"
            v.long_name = "mostly constant field"
            for i in range(steps):
                v[i] = big_step(i)

    _write_atomically(path, write)


def ensure(path: Path, what: str, make: Callable[[], None]) -> None:
    if path.exists():
        log(f"{what}: reusing {path}")
        return
    log(f"{what}: generating {path} ...")
    t0 = time.perf_counter()
    make()
    log(f"{what}: generated in {time.perf_counter() - t0:.1f} s")


def describe(path: Path, var: str) -> int:
    with xr.open_dataset(path) as ds:
        v = ds[var]
        nbytes = int(v.size * v.dtype.itemsize)
        log(
            f"{path.name}: {var}{tuple(v.shape)} {v.dtype}, "
            f"{path.stat().st_size / MB:.0f} MB on disk, {nbytes / MB:.0f} MB uncompressed "
            f"(chunks {v.encoding.get('chunksizes')}, zlib {v.encoding.get('complevel')}, "
            f"shuffle {v.encoding.get('shuffle')})"
        )
    return nbytes


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    assert url.startswith("http://127.0.0.1:")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    log_path: Path

    def tail(self, n: int = 25) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in lines[-n:])

    def rss(self) -> int:
        try:
            p = psutil.Process(self.proc.pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for q in procs:
            with contextlib.suppress(psutil.Error):
                total += q.memory_info().rss
        return total

    def cpu(self) -> float:
        """CPU seconds (user + system) the server and its children have used so far."""
        try:
            p = psutil.Process(self.proc.pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for q in procs:
            with contextlib.suppress(psutil.Error):
                t = q.cpu_times()
                total += t.user + t.system
        return total

    def wait_ready(self, path: str, timeout: float, marker: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if marker is None or re.search(marker, self.log_path.read_text(errors="replace")):
                with contextlib.suppress(OSError):
                    if get(self.base + path, timeout=5)[0] == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path, base: str) -> Server:
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )
    return Server(name, proc, base, log_path)


def serve_xpublish(path: str, port: int) -> None:
    """Child-process entry point: the reference server, as an xpublish user runs it."""
    import uvicorn
    import xpublish

    ds = xr.open_dataset(path, chunks={})
    # plugins come from entry points, xpublish-zarr among them
    rest = xpublish.Rest({XPUBLISH_ID: ds})  # type: ignore[attr-defined]
    if "zarr" not in rest.plugins:
        raise SystemExit(f"xpublish-zarr plugin not loaded: {sorted(rest.plugins)}")
    uvicorn.run(rest.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_xpublish(path: Path, rundir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-xpublish", str(path)]
    argv += ["--port", str(port)]
    server = spawn(
        "xpublish", argv, dict(os.environ), rundir / "xpublish.log", f"http://127.0.0.1:{port}"
    )
    server.wait_ready(f"/datasets/{XPUBLISH_ID}/zarr/zarr.json", timeout=120)
    return server


def strato_exe() -> str:
    exe = Path(sys.executable).with_name("strato")
    return str(exe) if exe.exists() else "strato"


def strato_env(
    workdir: Path, settings: dict[str, str], server_src: Path | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "STRATO_DATA_ALLOWED_ROOTS": json.dumps([str(workdir)]),
            "STRATO_DATA_DEMO": "false",
            "STRATO_LOG_ACCESS": "false",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
    )
    if server_src is not None:
        # Ahead of the installed (editable) strato: another checkout's code, to compare
        # two versions of the server with the same client (bench/paired.py).
        env["PYTHONPATH"] = os.pathsep.join(
            [str(server_src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    return env


def strato_add(datadir: Path, env: dict[str, str], path: Path, dataset_id: str) -> None:
    argv = [strato_exe(), "--data-dir", str(datadir), "data", "add", str(path)]
    argv += ["--id", dataset_id]
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if r.returncode != 0:
        out = (r.stdout + r.stderr).strip().splitlines()
        raise RuntimeError(
            f"`strato data add {path.name} --id {dataset_id}` failed ({r.returncode}):\n"
            + "\n".join("    | " + line for line in out[-8:])
        )
    log(f"strato data add {dataset_id}: {time.perf_counter() - t0:.1f} s: {r.stdout.strip()}")


def start_strato(datadir: Path, env: dict[str, str], rundir: Path) -> Server:
    port = free_port()
    argv = [strato_exe(), "--data-dir", str(datadir), "api", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    server = spawn("strato", argv, env, rundir / "strato.log", base)
    server.wait_ready("/healthz", timeout=120, marker=rf"web:\s+{re.escape(base)}/")
    return server


# --------------------------------------------------------------------------- measuring


@dataclass
class RssSampler:
    """Samples servers' RSS every 0.1 s in a thread; `window()` reports a phase's peak."""

    servers: list[Server]
    interval: float = 0.1
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _windows: list[dict[str, int]] = field(default_factory=list)

    def _run(self) -> None:
        while not self._stop.is_set():
            for s in self.servers:
                r = s.rss()
                with self._lock:
                    self.peaks[s.name] = max(self.peaks.get(s.name, 0), r)
                    for w in self._windows:
                        w[s.name] = max(w.get(s.name, 0), r)
            self._stop.wait(self.interval)

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    @contextlib.contextmanager
    def window(self) -> Iterator[dict[str, int]]:
        w: dict[str, int] = {s.name: s.rss() for s in self.servers}
        with self._lock:
            self._windows.append(w)
        try:
            yield w
        finally:
            with self._lock:
                self._windows.remove(w)
            for s in self.servers:
                w[s.name] = max(w[s.name], s.rss())


@dataclass
class Endpoint:
    label: str
    server: Server
    url: str
    zarr_format: int
    times: list[float] = field(default_factory=list)
    # The client's kernel time per read: page faults of the arrays it allocates, which
    # vary from read to read on some machines by as much as the serving does.
    kernel: list[float] = field(default_factory=list)
    # The server's CPU seconds per read: what a server-side change (a fast path) saves,
    # whatever the client's share of the elapsed time and the machine's load.
    server_cpu: list[float] = field(default_factory=list)
    peak_rss: int = 0

    def open(self, chunks: Any = None) -> xr.Dataset:
        return xr.open_dataset(self.url, engine="zarr", zarr_format=self.zarr_format, chunks=chunks)


def read_whole(ep: Endpoint, var: str) -> tuple[float, float, xr.DataArray]:
    """Seconds to read ``var`` whole, the client's kernel seconds meanwhile, the values."""
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    t0 = time.perf_counter()
    ds = ep.open()
    values = ds[var].values
    elapsed = time.perf_counter() - t0
    kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys0
    da = xr.DataArray(values, dims=ds[var].dims, coords=ds[var].coords)
    ds.close()
    return elapsed, kernel, da


def same(reference: xr.DataArray, got: xr.DataArray) -> str | None:
    """None if identical (NaN == NaN), else what differs."""
    if got.dtype != reference.dtype or got.shape != reference.shape:
        return f"dtype/shape {got.dtype}{got.shape} != {reference.dtype}{reference.shape}"
    a, b = reference.values, got.values
    bitwise = a.dtype.kind == "f" and np.array_equal(
        a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")
    )
    if not bitwise and not np.array_equal(a, b, equal_nan=True):
        bad = int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
        return f"{bad} of {reference.size} values differ"
    for name in reference.dims:
        if name in reference.coords and not np.array_equal(
            reference[name].values, got[name].values
        ):
            return f"coordinate {name} differs"
    return None


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / MB / seconds


def mirror_store(base: str, dest: Path) -> None:
    """Copy the Zarr v2 store at ``base`` (consolidated metadata and every chunk) into files."""
    status, body = get(f"{base}/.zmetadata")
    if status != 200:
        raise RuntimeError(f"{base}/.zmetadata answered {status}")
    docs = json.loads(body)["metadata"]
    files = {".zmetadata": body, **{k: json.dumps(v).encode() for k, v in docs.items()}}
    for key, meta in docs.items():
        if not key.endswith(".zarray"):
            continue
        var = key.rsplit("/", 1)[0]
        sep = meta.get("dimension_separator", ".")
        grid = [-(-n // c) for n, c in zip(meta["shape"], meta["chunks"], strict=True)]
        for idx in np.ndindex(*grid):
            chunk = f"{var}/{sep.join(map(str, idx)) or '0'}"
            status, body = get(f"{base}/{chunk}")
            if status == 200:  # a missing chunk is all fill value, as in the source
                files[chunk] = body
    for key, content in files.items():
        path = dest / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def start_nginx(root: Path, rundir: Path) -> Server | None:
    """nginx serving ``root`` as static files: the fastest a server of those bytes can be."""
    exe = nginx_exe()
    if exe is None:
        return None
    port = free_port()
    conf = nginx_config(root, port, rundir)
    argv = [exe, "-c", str(conf), "-e", str(rundir / "nginx-error.log")]
    server = spawn(
        "nginx", argv, dict(os.environ), rundir / "nginx.log", f"http://127.0.0.1:{port}"
    )
    server.wait_ready("/kerchunk/.zmetadata", timeout=30)
    return server


# --------------------------------------------------------------------------- phases


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)


def measure_tas(
    endpoints: list[Endpoint],
    reference: xr.DataArray,
    nbytes: int,
    sampler: RssSampler,
    out: Outcome,
    rounds: int = ROUNDS,
) -> list[Endpoint]:
    """Warm up each endpoint, then read the whole variable ``rounds`` times each."""
    usable = []
    for ep in endpoints:
        try:
            t0 = time.perf_counter()
            with ep.open() as ds:
                warm = ds[VAR][:2].values
            ok = np.array_equal(warm, reference.values[:2], equal_nan=True)
            log(f"warm-up {ep.label}: {time.perf_counter() - t0:.2f} s, match={ok}")
            if not ok:
                out.fail(f"{ep.label}: warm-up slice differs")
            usable.append(ep)
        except Exception as exc:
            log(f"FAILED {ep.label}: warm-up: {type(exc).__name__}: {exc}")
            out.fail(f"{ep.label}: {type(exc).__name__}: {exc}")

    for rnd in range(1, rounds + 1):
        # A read runs slower or faster depending on the one before it (by up to a
        # second here), so the order is shuffled each round, the same way every run.
        order = list(usable)
        random.Random(rnd).shuffle(order)
        for ep in order:
            with sampler.window() as w:
                cpu0 = ep.server.cpu()
                try:
                    elapsed, kernel, got = read_whole(ep, VAR)
                except Exception as exc:
                    log(f"FAILED {ep.label}: read: {type(exc).__name__}: {exc}")
                    out.fail(f"{ep.label}: {type(exc).__name__}: {exc}")
                    continue
                ep.server_cpu.append(ep.server.cpu() - cpu0)
            ep.peak_rss = max(ep.peak_rss, w[ep.server.name])
            problem = same(reference, got)
            del got
            ep.times.append(elapsed)
            ep.kernel.append(kernel)
            log(
                f"round {rnd} {ep.label:22} {elapsed:6.2f} s {mbps(nbytes, elapsed):7.1f} MB/s  "
                f"client kernel {kernel:4.2f} s  server CPU {ep.server_cpu[-1]:5.2f} s  "
                f"values {'identical' if problem is None else 'DIFFER: ' + problem}"
            )
            if problem is not None:
                out.fail(f"{ep.label}: {problem}")
    return usable


def check_big(strato: Server, steps: int, nbytes: int, sampler: RssSampler, out: Outcome) -> None:
    """Read the big variable whole, chunk by chunk, through /zarr and /kerchunk."""
    expected = big_expected_mean(steps)
    for label, kind, fmt in (
        ("strato /zarr (v3)", "zarr", 3),
        ("strato /kerchunk (v2)", "kerchunk", 2),
    ):
        ep = Endpoint(label, strato, f"{strato.base}/datasets/{STRATO_BIG_ID}/{kind}/", fmt)
        before = strato.rss()
        with sampler.window() as w:
            try:
                t0 = time.perf_counter()
                with ep.open(chunks={}) as ds, dask.config.set(num_workers=BIG_CLIENT_THREADS):
                    var = ds[BIG_VAR]
                    got_mean = float(var.astype(np.float64).mean().compute())
                    elapsed = time.perf_counter() - t0
                    exact = all(np.array_equal(var[i].values, big_step(i)) for i in (0, steps - 1))
            except Exception as exc:
                log(f"FAILED big {label}: {type(exc).__name__}: {exc}")
                out.fail(f"big {label}: {type(exc).__name__}: {exc}")
                continue
        peak = w[strato.name]
        good = bool(np.isclose(got_mean, expected, rtol=1e-9, atol=0))
        below = peak < RSS_LIMIT
        line = (
            f"big variable via {label:22} {nbytes / 1e9:.2f} GB in {elapsed:5.1f} s "
            f"({mbps(nbytes, elapsed):.0f} MB/s); mean "
            f"{'matches' if good else f'DIFFERS ({got_mean!r} != {expected!r})'}, "
            f"first/last step {'identical' if exact else 'DIFFER'}; strato RSS "
            f"{before / MB:.0f} MB before, peak {peak / MB:.0f} MB: "
            f"{'below' if below else 'NOT below'} 1 GB"
        )
        log(line)
        out.notes.append(line)
        if not good:
            out.fail(f"big {label}: mean differs")
        if not exact:
            out.fail(f"big {label}: first/last step differ")
        if not below:
            out.notes.append(f"GOAL MISSED: strato peak RSS {peak / MB:.0f} MB >= 1 GB ({label})")


def report(
    endpoints: list[Endpoint],
    reference: xr.DataArray,
    nbytes: int,
    disk: int,
    sampler: RssSampler,
    out: Outcome,
) -> None:
    print()
    print(
        f"== {VAR}{tuple(reference.shape)} float32: {nbytes / MB:.0f} MB uncompressed, "
        f"{disk / MB:.0f} MB on disk; MB/s of uncompressed bytes, median of the reads"
    )
    medians: dict[str, float] = {}
    for ep in endpoints:
        if not ep.times:
            continue
        med = statistics.median(ep.times)
        medians[ep.label] = mbps(nbytes, med)
        print(
            f"{ep.label:22} {medians[ep.label]:7.1f} MB/s  (median {med:.2f} s; runs "
            f"{', '.join(f'{t:.2f}' for t in ep.times)} s; client kernel "
            f"{', '.join(f'{k:.2f}' for k in ep.kernel)} s; server CPU median "
            f"{statistics.median(ep.server_cpu):.2f} s; server peak RSS "
            f"{ep.peak_rss / MB:.0f} MB)"
        )
    for name, peak in sampler.peaks.items():
        print(f"peak RSS {name} (process + children), whole run: {peak / MB:.0f} MB")
    ref = medians.get(XPUBLISH_LABEL)
    for key, label, goal in (
        ("zarr", "strato /zarr (v3)", ZARR_GOAL),
        ("zarr-v2", "strato /zarr (v2)", None),
        ("kerchunk", "strato /kerchunk (v2)", KERCHUNK_GOAL),
    ):
        if ref is None or label not in medians:
            print(f"ratio {key}/xpublish: n/a ({label} or xpublish did not complete)")
            continue
        r = medians[label] / ref
        print(
            f"ratio {key}/xpublish: {r:.1f}x "
            f"(strato {medians[label]:.0f} MB/s vs xpublish {ref:.0f} MB/s)"
            + (f"; goal {goal:.0f}x" if goal else "")
        )
        if goal is not None and r < goal:
            print(f"GOAL MISSED: {key}/xpublish {r:.1f}x < {goal:.0f}x")
    ceiling = medians.get(NGINX_LABEL)
    if ref is not None and ceiling is not None:
        ker = medians.get("strato /kerchunk (v2)")
        print(
            f"ceiling: {NGINX_LABEL} {ceiling:.0f} MB/s = {ceiling / ref:.1f}x xpublish: the "
            "most any server of the raw chunks reaches with this client on this machine"
            + (f"; strato /kerchunk reaches {ker / ceiling:.0%} of it" if ker else "")
        )
    for line in out.notes:
        print(line)
    for f in out.failures:
        print(f"FAILED: {f}")
    sys.stdout.flush()


# --------------------------------------------------------------------------- main


def keep_freed_memory() -> bool:
    """Make this process's allocator keep what it frees, rather than give it back to the
    system: see "The client's memory" above. False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        # glibc's M_ARENA_MAX = 1: every thread allocates from the main heap (the heaps
        # of other arenas are mapped and given back on their own); M_MMAP_MAX = 0: large
        # blocks from that heap, not mmap; M_TRIM_THRESHOLD at its largest: the heap is
        # not given back.
        settings = ((-8, 1), (-4, 0), (-1, 2**31 - 1))
        return all(libc.mallopt(param, value) for param, value in settings)
    except (OSError, AttributeError):
        return False


def run(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    kept = args.client_allocator == "keep" and keep_freed_memory()
    if args.client_allocator == "keep":
        log(f"client allocator keeps freed memory: {'yes' if kept else 'no (not glibc)'}")
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "strato-bench-zarr").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"strato vs xpublish Zarr serving{' (--quick)' if args.quick else ''}; workdir {workdir}")
    for name, value in setting_env(args.setting).items():
        log(f"strato setting {name}={value}")
    if args.server_src is not None:
        log(f"strato served from {args.server_src}")

    tas_path = workdir / sizes.tas_name
    big_path = workdir / sizes.big_name
    ensure(tas_path, "tas file", lambda: make_tas(tas_path, sizes.days))
    nbytes = describe(tas_path, VAR)
    ensure(big_path, "big file", lambda: make_big(big_path, sizes.big_steps))
    big_nbytes = describe(big_path, BIG_VAR)
    if big_nbytes <= 4 * 2**30:
        log(f"note: big variable is {big_nbytes / 2**30:.1f} GiB, not above 4 GiB (--quick)")
    with xr.open_dataset(tas_path) as local:
        reference = local[VAR].load()
    if kept:
        # The heap grown once to what a read fills, so the first measured read does not
        # pay for faulting it in.
        np.ones(2 * nbytes + (64 << 20), dtype=np.uint8)

    out = Outcome()
    rundir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    servers: list[Server] = []
    endpoints: list[Endpoint] = []
    sampler = RssSampler(servers)
    try:
        log("starting xpublish (xpublish-zarr plugin, uvicorn) ...")
        xpub = start_xpublish(tas_path, rundir)
        servers.append(xpub)
        log(f"xpublish up at {xpub.base}")
        endpoints.append(
            Endpoint(XPUBLISH_LABEL, xpub, f"{xpub.base}/datasets/{XPUBLISH_ID}/zarr/", 3)
        )

        strato: Server | None = None
        try:
            env = strato_env(workdir, setting_env(args.setting), args.server_src)
            datadir = rundir / "strato-data"
            strato_add(datadir, env, tas_path, STRATO_ID)
            strato_add(datadir, env, big_path, STRATO_BIG_ID)
            log("starting strato api ...")
            strato = start_strato(datadir, env, rundir)
            servers.append(strato)
            log(f"strato up at {strato.base}")
            base = f"{strato.base}/datasets/{STRATO_ID}"
            endpoints += [
                Endpoint("strato /zarr (v3)", strato, f"{base}/zarr/", 3),
                Endpoint("strato /zarr (v2)", strato, f"{base}/zarr/", 2),
                Endpoint("strato /kerchunk (v2)", strato, f"{base}/kerchunk/", 2),
            ]
            mirror_store(f"{base}/kerchunk", rundir / "static" / "kerchunk")
            nginx = start_nginx(rundir / "static", rundir)
            if nginx is None:
                log("nginx not found: no ceiling measured")
            else:
                servers.append(nginx)
                log(f"nginx up at {nginx.base}, serving a copy of strato's /kerchunk store")
                endpoints.append(Endpoint(NGINX_LABEL, nginx, f"{nginx.base}/kerchunk/", 2))
        except Exception as exc:
            log(f"STRATO FAILED: {type(exc).__name__}: {exc}")
            reason = str(exc).strip().splitlines()[-1].strip(" |")
            out.fail(f"strato could not be set up: {reason}")

        with sampler.running():
            endpoints = measure_tas(endpoints, reference, nbytes, sampler, out, args.rounds)
            if strato is not None:
                check_big(strato, sizes.big_steps, big_nbytes, sampler, out)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(rundir, ignore_errors=True)

    report(endpoints, reference, nbytes, tas_path.stat().st_size, sampler, out)
    print(f"client allocator: {args.client_allocator}")
    return 1 if out.failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller files, for a fast check")
    parser.add_argument("--workdir", help="where generated files are kept and reused")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"reads of each endpoint (default {ROUNDS}); more average out the noise",
    )
    parser.add_argument(
        "--client-allocator",
        choices=("keep", "default"),
        default="keep",
        help="keep: the client reuses the memory it frees (default); default: glibc as is",
    )
    add_setting_option(parser)
    parser.add_argument(
        "--server-src",
        type=lambda v: Path(v).resolve(),
        metavar="PATH",
        help="run strato's server from this source tree (its src/), ahead of the installed one",
    )
    parser.add_argument("--serve-xpublish", metavar="NC", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_xpublish:
        serve_xpublish(args.serve_xpublish, args.port)
        return
    sys.exit(run(args))


if __name__ == "__main__":
    main()
