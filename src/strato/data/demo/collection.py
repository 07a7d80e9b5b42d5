"""The CMIP6-like demo collection: synthetic but plausible model output, generated locally.

The files look like what a user downloads from ESGF: CMIP6 DRS directories and file names,
CMIP6 global attributes, CF coordinates with bounds, zlib-compressed NetCDF4 chunked one
time step per chunk, and one variable packed as int16. The fields are seeded per file, so a
file regenerated after a crash holds the same numbers as its siblings.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from strato.data.datasets.hdf5 import HDF5_LOCK

Array = npt.NDArray[Any]

TIME_UNITS = "days since 1850-01-01"
CALENDAR = "standard"
EPOCH = date(1850, 1, 1)
VERSION = "v20260101"
SOURCE_ID = "STRATO-DEMO"
INSTITUTION_ID = "STRATO"
ACTIVITY_ID = "CMIP"
EXPERIMENT_ID = "historical"
MEMBER = "r1i1p1f1"
GRID_LABEL = "gn"
FILL_FLOAT = np.float32(1e20)  # the CMIP6 convention for missing floats
FILL_INT16 = np.int16(-32767)
# 0.01 K steps around the freezing point cover -54..600 K in int16. The packing attributes
# are float64: Zarr's JSON attributes cannot carry float32, and a float32 scale_factor would
# make a Zarr reader unpack to other numbers than a NetCDF reader of the same file.
SCALE_FACTOR = np.float64(0.01)
ADD_OFFSET = np.float64(273.15)
DAILY_BLOCK = 31
COMPLEVEL = 1  # level 1 compresses noisy fields nearly as well as 4 at a fraction of the time

# Crude continents as (centre lat, centre lon, half-height, half-width) in degrees: enough for
# a map to show land/sea contrast where a reader expects it. Longitudes are 0..360.
CONTINENTS: tuple[tuple[float, float, float, float], ...] = (
    (48.0, 260.0, 22.0, 32.0),  # North America
    (70.0, 318.0, 10.0, 14.0),  # Greenland
    (-15.0, 300.0, 28.0, 14.0),  # South America
    (8.0, 20.0, 28.0, 22.0),  # Africa
    (52.0, 60.0, 18.0, 55.0),  # Europe
    (45.0, 105.0, 22.0, 45.0),  # Asia
    (22.0, 80.0, 12.0, 10.0),  # India
    (-25.0, 134.0, 12.0, 18.0),  # Australia
    (-82.0, 180.0, 10.0, 200.0),  # Antarctica
)


@dataclass(frozen=True)
class DemoDataset:
    id: str
    title: str
    glob: str
    paths: tuple[Path, ...]
    description: str


@dataclass(frozen=True)
class _Scale:
    step: float  # grid spacing in degrees
    monthly_years: tuple[int, ...]
    daily_years: tuple[int, ...]
    nominal_resolution: str
    grid: str


SCALES: dict[str, _Scale] = {
    "full": _Scale(
        1.0,
        tuple(range(1980, 2015)),
        (2013, 2014),
        "100 km",
        "synthetic regular 1x1 degree latitude-longitude grid",
    ),
    "small": _Scale(
        10.0,
        (1980, 1981, 1982),
        (2013, 2014),
        "1000 km",
        "synthetic regular 10x10 degree latitude-longitude grid",
    ),
}


@dataclass(frozen=True)
class _Variable:
    id: str  # dataset id
    variable_id: str
    table_id: str
    frequency: str
    standard_name: str
    long_name: str
    units: str
    cell_methods: str
    comment: str
    title: str
    description: str


VARIABLES: tuple[_Variable, ...] = (
    _Variable(
        "cmip6-demo-tas-mon",
        "tas",
        "Amon",
        "mon",
        "air_temperature",
        "Near-Surface Air Temperature",
        "K",
        "area: time: mean",
        "near-surface (usually, 2 meter) air temperature",
        "Near-surface air temperature, monthly (CMIP6-like demo)",
        "Synthetic monthly near-surface air temperature shaped like CMIP6 historical output: "
        "a pole-to-equator gradient, land/sea contrast, a seasonal cycle of opposite phase in "
        "each hemisphere, a small warming trend and weather noise. One file per year.",
    ),
    _Variable(
        "cmip6-demo-pr-mon",
        "pr",
        "Amon",
        "mon",
        "precipitation_flux",
        "Precipitation",
        "kg m-2 s-1",
        "area: time: mean",
        "includes both liquid and solid phases",
        "Precipitation, monthly (CMIP6-like demo)",
        "Synthetic monthly precipitation flux shaped like CMIP6 historical output: an ITCZ "
        "that follows the sun, mid-latitude storm tracks, dry subtropics and drier continents. "
        "One file per year.",
    ),
    _Variable(
        "cmip6-demo-tasmax-day",
        "tasmax",
        "day",
        "day",
        "air_temperature",
        "Daily Maximum Near-Surface Air Temperature",
        "K",
        "area: mean time: maximum",
        "maximum near-surface (usually, 2 meter) air temperature (add cell_method attribute "
        "'time: max')",
        "Daily maximum near-surface air temperature (CMIP6-like demo, packed int16)",
        "Synthetic daily maximum near-surface air temperature stored packed as int16 with "
        "scale_factor and add_offset, with a few missing values, as many archives store it. "
        "One file per year.",
    ),
)


def _directory(root: Path, var: _Variable) -> Path:
    return (
        root
        / "CMIP6"
        / ACTIVITY_ID
        / INSTITUTION_ID
        / SOURCE_ID
        / EXPERIMENT_ID
        / MEMBER
        / var.table_id
        / var.variable_id
        / GRID_LABEL
        / VERSION
    )


def _file_name(var: _Variable, period: str) -> str:
    parts = (var.variable_id, var.table_id, SOURCE_ID, EXPERIMENT_ID, MEMBER, GRID_LABEL, period)
    return "_".join(parts) + ".nc"


def _period(var: _Variable, year: int) -> str:
    if var.frequency == "mon":
        return f"{year}01-{year}12"
    return f"{year}0101-{year}1231"


def generate_demo(
    root: Path, *, scale: Literal["full", "small"] = "full", seed: int = 0
) -> list[DemoDataset]:
    """Write the demo collection under ``root`` (skipping files already there)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
    spec = SCALES[scale]
    root = root.resolve()
    grid = _Grid.make(spec.step)
    writers: dict[str, Callable[[int], xr.Dataset]] = {
        "tas": lambda year: _monthly_dataset(grid, VARIABLES[0], year, seed, spec),
        "pr": lambda year: _monthly_dataset(grid, VARIABLES[1], year, seed, spec),
        "tasmax": lambda year: _daily_dataset(grid, VARIABLES[2], year, seed, spec),
    }
    datasets = []
    for var in VARIABLES:
        directory = _directory(root, var)
        directory.mkdir(parents=True, exist_ok=True)
        years = spec.monthly_years if var.frequency == "mon" else spec.daily_years
        paths = []
        for year in years:
            path = directory / _file_name(var, _period(var, year))
            if not path.exists():
                _write_atomically(writers[var.variable_id](year), path, var)
            paths.append(path)
        datasets.append(
            DemoDataset(
                id=var.id,
                title=var.title,
                glob=str(directory / _file_name(var, "*")),
                paths=tuple(paths),
                description=var.description,
            )
        )
    return datasets


def _write_atomically(ds: xr.Dataset, path: Path, var: _Variable) -> None:
    # A crash or a concurrent generator must never leave a half-written file under the final
    # name: the temporary name does not match the registration glob, and rename is atomic.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        # libhdf5 is not thread-safe and `strato up` serves requests while this writes.
        with HDF5_LOCK:
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(ds, var))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _encoding(ds: xr.Dataset, var: _Variable) -> dict[str, dict[str, Any]]:
    nlat, nlon = ds.sizes["lat"], ds.sizes["lon"]
    data: dict[str, Any] = {
        "zlib": True,
        "complevel": COMPLEVEL,
        "shuffle": True,
        "chunksizes": (1, nlat, nlon),
    }
    if var.variable_id == "tasmax":
        # Already packed by _daily_dataset; scale_factor and add_offset are in its attributes.
        data |= {"dtype": "int16", "_FillValue": FILL_INT16}
    else:
        data |= {"dtype": "float32", "_FillValue": FILL_FLOAT}
    no_fill = {"_FillValue": None}
    return {
        var.variable_id: data,
        "time": {"dtype": "float64", **no_fill},
        "time_bnds": {"dtype": "float64", **no_fill},
        "lat": {"dtype": "float64", **no_fill},
        "lat_bnds": {"dtype": "float64", **no_fill},
        "lon": {"dtype": "float64", **no_fill},
        "lon_bnds": {"dtype": "float64", **no_fill},
        **({"height": {"dtype": "float64", **no_fill}} if "height" in ds.coords else {}),
    }


# --- the grid and the climate ---------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    lat: Array
    lon: Array
    land: Array  # 0..1 land fraction, (lat, lon)
    sinlat: Array  # (lat, 1)

    @classmethod
    def make(cls, step: float) -> _Grid:
        lat = np.arange(-90 + step / 2, 90, step)
        lon = np.arange(step / 2, 360, step)
        return cls(lat, lon, _land_fraction(lat, lon), np.sin(np.deg2rad(lat))[:, None])


def _land_fraction(lat: Array, lon: Array) -> Array:
    la, lo = lat[:, None], lon[None, :]
    distance = np.full((lat.size, lon.size), np.inf)
    for clat, clon, half_h, half_w in CONTINENTS:
        dlon = (lo - clon + 180) % 360 - 180
        distance = np.minimum(distance, np.hypot((la - clat) / half_h, dlon / half_w))
    # A soft coast, so coarse grids get fractional land rather than jagged blocks.
    land: Array = 1 / (1 + np.exp((distance - 1) * 8))
    return land


def _season(grid: _Grid, when: Array) -> Array:
    """The seasonal cycle: +1 at the local summer peak, -1 in winter, for times in years."""
    # Peaks lag the solstice by about a month (mid-July in the north, mid-January in the south).
    phase = np.cos(2 * np.pi * (when - 0.54))[:, None, None]
    hemisphere = np.tanh(np.rad2deg(np.arcsin(grid.sinlat)) / 12)[None]
    return phase * hemisphere


def _tas_climate(grid: _Grid, when: Array, year0: int) -> Array:
    s2 = grid.sinlat**2
    land = grid.land
    base = 301.0 - 42.0 * s2 - 6.0 * land * s2  # colder interiors at high latitude
    base = base - 12.0 * land * (grid.sinlat < -0.9)  # the Antarctic plateau
    amplitude = (1.5 + 16.0 * np.abs(grid.sinlat) ** 1.5) * (0.35 + 0.65 * land)
    trend = 0.018 * (when - year0)[:, None, None] * (1 + 1.5 * s2[None])
    field: Array = base[None] + amplitude[None] * _season(grid, when) + trend
    return field


def _pr_climate(grid: _Grid, when: Array) -> Array:
    lat = np.rad2deg(np.arcsin(grid.sinlat))[None]  # (1, lat, 1)
    land = grid.land[None]
    itcz_lat = 6.0 + 8.0 * np.cos(2 * np.pi * (when - 0.6))[:, None, None]
    itcz = 9.0 * np.exp(-(((lat - itcz_lat) / 7.0) ** 2))
    winter = 1 - 0.3 * _season(grid, when)  # storm tracks are strongest in winter
    storms = 4.0 * np.exp(-(((np.abs(lat) - 45.0) / 11.0) ** 2)) * winter * (1.15 - 0.4 * land)
    subtropics = np.exp(-(((np.abs(lat) - 24.0) / 8.0) ** 2))
    polar = 1 / (1 + np.exp(-(np.abs(lat) - 70.0) / 4.0))
    background = 1.6 * (1 - 0.75 * subtropics * (0.6 + 0.4 * land)) * (1 - 0.6 * polar)
    mm_per_day = background + itcz * (1 - 0.3 * land) + storms
    per_second: Array = mm_per_day / 86400.0  # 1 mm of water per day is 1 kg m-2 per day
    return per_second


def _smooth_noise(rng: np.random.Generator, grid: _Grid, steps: int, sigma: float) -> Array:
    """Weather-like anomalies: a few large-scale waves plus patchy noise, float32."""
    lat = np.deg2rad(grid.lat)[None, :, None]
    lon = np.deg2rad(grid.lon)[None, None, :]
    field = np.zeros((steps, grid.lat.size, grid.lon.size), dtype=np.float32)
    for k in (1, 2, 3):
        amp = rng.normal(0, sigma / k, (steps, 1, 1)).astype(np.float32)
        shift = rng.uniform(0, 2 * np.pi, (steps, 1, 1))
        wave = np.cos(k * lon + shift) * np.cos(lat) ** 0.5 * np.sin((k + 1) * lat + shift)
        field += amp * wave.astype(np.float32)
    field += _patchy(rng, grid, steps) * np.float32(sigma * 0.5)
    return field


def _patchy(rng: np.random.Generator, grid: _Grid, steps: int) -> Array:
    """Unit-variance noise correlated over a few hundred km, so maps show weather, not static."""
    white = rng.standard_normal((steps, grid.lat.size, grid.lon.size), dtype=np.float32)
    half = round(2.0 / float(grid.lat[1] - grid.lat[0]))  # a 5-degree box; none on coarse grids
    if half == 0:
        return white
    smooth = _box(_box(white, half, axis=2, wrap=True), half, axis=1, wrap=False)
    smooth *= np.float32(2 * half + 1)  # a box mean of n*n values has 1/n the spread
    return smooth


def _box(a: Array, half: int, *, axis: int, wrap: bool) -> Array:
    """Running mean of width 2*half+1 along ``axis`` by differences of a cumulative sum."""
    pad = [(0, 0)] * a.ndim
    pad[axis] = (half + 1, half)
    cumulative = np.cumsum(np.pad(a, pad, mode="wrap" if wrap else "edge"), axis=axis)
    n, width = a.shape[axis], 2 * half + 1
    upper = np.take(cumulative, np.arange(width, width + n), axis=axis)
    lower = np.take(cumulative, np.arange(n), axis=axis)
    mean: Array = (upper - lower) / np.float32(width)
    return mean


def _rng(seed: int, var: _Variable, year: int) -> np.random.Generator:
    return np.random.default_rng([seed, VARIABLES.index(var), year])


def _monthly_times(year: int) -> tuple[Array, Array]:
    starts = [date(year, m, 1) for m in range(1, 13)] + [date(year + 1, 1, 1)]
    edges = np.array([(d - EPOCH).days for d in starts], dtype=np.float64)
    bounds = np.stack([edges[:-1], edges[1:]], axis=1)
    return bounds.mean(axis=1), bounds


def _daily_times(year: int) -> tuple[Array, Array]:
    first = (date(year, 1, 1) - EPOCH).days
    ndays = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    starts = np.arange(first, first + ndays, dtype=np.float64)
    return starts + 0.5, np.stack([starts, starts + 1], axis=1)


def _fraction_of_year(days: Array, year: int) -> Array:
    first = (date(year, 1, 1) - EPOCH).days
    length = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    fraction: Array = year + (days - first) / length
    return fraction


def _monthly_dataset(grid: _Grid, var: _Variable, year: int, seed: int, spec: _Scale) -> xr.Dataset:
    rng = _rng(seed, var, year)
    time, time_bnds = _monthly_times(year)
    when = _fraction_of_year(time, year)
    if var.variable_id == "tas":
        values = _tas_climate(grid, when, spec.monthly_years[0]).astype(np.float32)
        values += _smooth_noise(rng, grid, time.size, 1.2)
    else:
        mean = _pr_climate(grid, when).astype(np.float32)
        # Log-normal noise with mean 1 keeps precipitation positive and skewed, as monthly
        # totals are.
        sigma = np.float32(0.5)
        noise = np.exp(sigma * _patchy(rng, grid, time.size) - sigma**2 / 2)
        values = mean * noise
    return _dataset(grid, var, values, time, time_bnds, year, rng, spec)


def _daily_dataset(grid: _Grid, var: _Variable, year: int, seed: int, spec: _Scale) -> xr.Dataset:
    rng = _rng(seed, var, year)
    time, time_bnds = _daily_times(year)
    when = _fraction_of_year(time, year)
    packed = np.empty((time.size, grid.lat.size, grid.lon.size), dtype=np.int16)
    # A month of days at a time, packed as it goes: a whole year of 1-degree fields as float64
    # intermediates would take a gigabyte.
    for start in range(0, time.size, DAILY_BLOCK):
        block = slice(start, start + DAILY_BLOCK)
        # Daily maxima sit above the daily mean, more so over dry land.
        climate = _tas_climate(grid, when[block], spec.monthly_years[0]) + 4.0 + 6.0 * grid.land
        values = climate.astype(np.float32)
        values += _smooth_noise(rng, grid, values.shape[0], 3.0)
        counts = np.round((values - ADD_OFFSET) / SCALE_FACTOR)
        # A few scattered missing values, as QC'd or station-merged products have.
        counts[rng.random(counts.shape) < 0.001] = FILL_INT16
        packed[block] = counts
    # And one day with a whole missing latitude band.
    packed[rng.integers(time.size), : max(1, grid.lat.size // 18)] = FILL_INT16
    return _dataset(grid, var, packed, time, time_bnds, year, rng, spec)


def _dataset(
    grid: _Grid,
    var: _Variable,
    values: Array,
    time: Array,
    time_bnds: Array,
    year: int,
    rng: np.random.Generator,
    spec: _Scale,
) -> xr.Dataset:
    step = float(grid.lat[1] - grid.lat[0])
    lat_bnds = np.stack([grid.lat - step / 2, grid.lat + step / 2], axis=1)
    lon_bnds = np.stack([grid.lon - step / 2, grid.lon + step / 2], axis=1)
    var_attrs: dict[str, Any] = {
        "standard_name": var.standard_name,
        "long_name": var.long_name,
        "comment": var.comment,
        "units": var.units,
        "cell_methods": var.cell_methods,
        "cell_measures": "area: areacella",
    }
    if var.variable_id == "tasmax":
        var_attrs |= {"scale_factor": SCALE_FACTOR, "add_offset": ADD_OFFSET}
    if var.variable_id in ("tas", "tasmax"):
        var_attrs["coordinates"] = "height"
    coords: dict[str, Any] = {
        # Raw numbers with CF units: every file shares the same time encoding, so a reader can
        # concatenate the raw values as well as the decoded ones.
        "time": (
            "time",
            time,
            {
                "bounds": "time_bnds",
                "units": TIME_UNITS,
                "calendar": CALENDAR,
                "axis": "T",
                "long_name": "time",
                "standard_name": "time",
            },
        ),
        "lat": (
            "lat",
            grid.lat,
            {
                "bounds": "lat_bnds",
                "units": "degrees_north",
                "axis": "Y",
                "long_name": "Latitude",
                "standard_name": "latitude",
            },
        ),
        "lon": (
            "lon",
            grid.lon,
            {
                "bounds": "lon_bnds",
                "units": "degrees_east",
                "axis": "X",
                "long_name": "Longitude",
                "standard_name": "longitude",
            },
        ),
    }
    data_vars: dict[str, Any] = {
        var.variable_id: (("time", "lat", "lon"), values, var_attrs),
        "time_bnds": (("time", "bnds"), time_bnds),
        "lat_bnds": (("lat", "bnds"), lat_bnds),
        "lon_bnds": (("lon", "bnds"), lon_bnds),
    }
    if "coordinates" in var_attrs:
        del var_attrs["coordinates"]  # xarray writes the attribute from the coordinate itself
        coords["height"] = (
            (),
            2.0,
            {
                "units": "m",
                "axis": "Z",
                "positive": "up",
                "long_name": "height",
                "standard_name": "height",
            },
        )
    return xr.Dataset(data_vars, coords, _global_attrs(var, year, rng, spec))


def _global_attrs(
    var: _Variable, year: int, rng: np.random.Generator, spec: _Scale
) -> dict[str, Any]:
    # Drawn from the file's own generator, so a regenerated file keeps its identifier.
    tracking = uuid.UUID(bytes=rng.bytes(16), version=4)
    further = f"https://furtherinfo.es-doc.org/CMIP6.{INSTITUTION_ID}.{SOURCE_ID}.historical.none.{MEMBER}"
    return {
        "Conventions": "CF-1.7 CMIP-6.2",
        "activity_id": ACTIVITY_ID,
        "branch_method": "standard",
        "branch_time_in_child": 0.0,
        "branch_time_in_parent": 0.0,
        "creation_date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_specs_version": "01.00.33",
        "experiment": "all-forcing simulation of the recent past",
        "experiment_id": EXPERIMENT_ID,
        "forcing_index": np.int32(1),
        "frequency": var.frequency,
        "further_info_url": further,
        "grid": spec.grid,
        "grid_label": GRID_LABEL,
        "initialization_index": np.int32(1),
        "institution": "strato demo collection: synthetic data, not the output of any model",
        "institution_id": INSTITUTION_ID,
        "license": (
            "CMIP6 model data produced by strato is licensed under a Creative Commons "
            "Attribution 4.0 International License (https://creativecommons.org/licenses). "
            "The data are synthetic and for demonstration only."
        ),
        "member_id": MEMBER,
        "mip_era": "CMIP6",
        "nominal_resolution": spec.nominal_resolution,
        "parent_activity_id": "CMIP",
        "parent_experiment_id": "piControl",
        "parent_mip_era": "CMIP6",
        "parent_source_id": SOURCE_ID,
        "parent_time_units": TIME_UNITS,
        "parent_variant_label": MEMBER,
        "physics_index": np.int32(1),
        "product": "model-output",
        "realization_index": np.int32(1),
        "realm": "atmos",
        "source": f"{SOURCE_ID} (2026): synthetic fields generated by strato for demonstration",
        "source_id": SOURCE_ID,
        "source_type": "AGCM",
        "sub_experiment": "none",
        "sub_experiment_id": "none",
        "table_id": var.table_id,
        "title": f"{SOURCE_ID} output prepared for CMIP6 (synthetic demo), {year}",
        "tracking_id": f"hdl:21.14100/{tracking}",
        "variable_id": var.variable_id,
        "variant_label": MEMBER,
    }
