"""PNG plots of a dataset variable: a map, an area-mean time series, a Hovmöller diagram.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas, never pyplot, so
concurrent requests share no global figure state. Every check that can fail on user input
runs before any data is read, and the byte budget is checked on exactly what will be read.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from strato.data.catalogs import holds_cftime, real_date
from strato.data.model.budget import check_budget
from strato.data.model.selection import Selection, apply_selection, describe
from strato.errors import InvalidInput, NotFound

KINDS = ("map", "timeseries", "hovmoller")
MIN_PIXELS = 16
MAX_PIXELS = 4096
MISSING_COLOUR = "0.85"  # NaNs show as light grey, distinct from every colormap's ends

_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")
# Names ocean and regional models give their 2-D latitude and longitude (NEMO, ROMS, MOM).
_LAT_2D_NAMES = (*_LAT_NAMES, "nav_lat", "lat_rho", "geolat", "latitude_2d")
_LON_2D_NAMES = (*_LON_NAMES, "nav_lon", "lon_rho", "geolon", "longitude_2d")
_LAT_UNITS = ("degrees_north", "degree_north", "degrees_N", "degree_N", "degreesN", "degreeN")
_LON_UNITS = ("degrees_east", "degree_east", "degrees_E", "degree_E", "degreesE", "degreeE")


def render_plot(
    ds: xr.Dataset,
    var: str,
    kind: str,
    cmap: str,
    selection: Selection,
    *,
    byte_budget: int,
    width: float = 8,
    height: float = 4.5,
    dpi: int = 100,
) -> bytes:
    """A PNG of ``var`` drawn as ``kind`` after ``selection``; raises strato.errors types."""
    if var not in ds.data_vars:
        names = ", ".join(map(str, ds.data_vars)) or "none"
        raise NotFound(f"there is no variable {var!r} in this dataset; the variables are {names}")
    if kind not in _PREPARE:
        raise InvalidInput(f"unknown plot kind {kind!r}; the kinds are {', '.join(KINDS)}")
    colormap = _colormap(cmap)
    _check_size(width, height, dpi)
    da = apply_selection(ds[var], selection)
    plot = _PREPARE[kind](da, var, selection)
    check_budget(plot.to_read, byte_budget, f"the {kind} of {var}")
    # Read first, then reduce in memory: the budget bounds what is read, and one read of many
    # small chunks beats a dask graph per reduction step. compute(), not load(): load() would
    # fill the caller's (possibly cached) dataset in place.
    data = plot.reduce(plot.to_read.compute())
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    plot.draw(fig, data, colormap)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


@dataclass(frozen=True)
class _Plot:
    to_read: xr.DataArray
    reduce: Callable[[xr.DataArray], xr.DataArray]
    draw: Callable[[Figure, xr.DataArray, Colormap], None]


# --- checks ---------------------------------------------------------------------------


def _colormap(name: str) -> Colormap:
    registry = matplotlib.colormaps
    if name in registry:
        return registry[name].with_extremes(bad=MISSING_COLOUR)
    close = difflib.get_close_matches(name, list(registry), n=5, cutoff=0.6)
    close += [c for c in registry if c.lower() == name.lower() and c not in close]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise InvalidInput(
        f"unknown colormap {name!r}; {hint}any matplotlib colormap name works, "
        "e.g. viridis, magma, RdBu_r, Blues (append _r to reverse one)"
    )


def _check_size(width: float, height: float, dpi: int) -> None:
    pixels = (width * dpi, height * dpi)
    if not all(MIN_PIXELS <= p <= MAX_PIXELS for p in pixels):
        raise InvalidInput(
            f"the image would be {pixels[0]:.0f} x {pixels[1]:.0f} pixels; each side must be "
            f"between {MIN_PIXELS} and {MAX_PIXELS} (width and height are in inches at dpi "
            "pixels per inch, e.g. width=8, height=4.5, dpi=100)"
        )


def _find_dim(da: xr.DataArray, names: tuple[str, ...], units: tuple[str, ...]) -> Hashable | None:
    for dim in da.dims:
        attrs: Mapping[Hashable, Any] = da[dim].attrs if dim in da.coords else {}
        standard = names[1]  # "latitude" / "longitude" is also the CF standard name
        if attrs.get("standard_name") == standard or attrs.get("units") in units:
            return dim
        if str(dim).lower() in names:
            return dim
    return None


def _lat(da: xr.DataArray) -> Hashable | None:
    return _find_dim(da, _LAT_NAMES, _LAT_UNITS)


def _lon(da: xr.DataArray) -> Hashable | None:
    return _find_dim(da, _LON_NAMES, _LON_UNITS)


@dataclass(frozen=True)
class _Grid:
    """Where a field lies: its latitude and longitude coordinates, and the two dimensions
    they span -- the same names on a regular grid, (j, i) or (y, x) on a curvilinear one."""

    lat: Hashable
    lon: Hashable
    dims: tuple[Hashable, Hashable]

    @property
    def curvilinear(self) -> bool:
        return self.dims != (self.lat, self.lon)


def _is_named(
    coord: xr.DataArray, name: Hashable, names: tuple[str, ...], units: tuple[str, ...]
) -> bool:
    attrs = coord.attrs
    return (
        attrs.get("standard_name") == names[1]
        or attrs.get("units") in units
        or str(name).lower() in names
    )


def _grid(da: xr.DataArray) -> _Grid | None:
    lat, lon = _lat(da), _lon(da)
    if lat is not None and lon is not None:
        return _Grid(lat, lon, (lat, lon))
    # Curvilinear: 2-D latitude and longitude over two of the field's dimensions.
    planar = [n for n, c in da.coords.items() if c.ndim == 2 and set(c.dims) <= set(da.dims)]
    lats = [n for n in planar if _is_named(da[n], n, _LAT_2D_NAMES, _LAT_UNITS)]
    lons = [n for n in planar if _is_named(da[n], n, _LON_2D_NAMES, _LON_UNITS)]
    for lat2 in lats:
        for lon2 in lons:
            if set(da[lat2].dims) == set(da[lon2].dims):
                first, second = da[lat2].dims
                return _Grid(lat2, lon2, (first, second))
    return None


def _is_time(coord: xr.DataArray) -> bool:
    if np.issubdtype(coord.dtype, np.datetime64):
        return True
    # Model calendars (noleap, 360_day) decode to cftime dates.
    return coord.dtype == object and holds_cftime(np.asarray(coord.values))


def _time(da: xr.DataArray) -> Hashable | None:
    dims = [d for d in da.dims if d in da.coords and _is_time(da[d])]
    if dims:
        return "time" if "time" in dims else dims[0]
    # Undecoded times are still the time axis, drawn as plain numbers.
    return "time" if "time" in da.dims else None


def _example(da: xr.DataArray, dim: Hashable) -> str:
    if dim not in da.coords:
        return f"{dim}=0"
    first = da[dim].values[0]
    if holds_cftime(np.asarray(da[dim].values)):
        return f"{dim}={first.strftime('%Y-%m-%d')}"
    if isinstance(first, np.datetime64):
        return f"{dim}={np.datetime_as_string(first, unit='D')}"
    if isinstance(first, np.number | float | int):
        return f"{dim}={float(first):g}"
    return f"{dim}=..."


def _too_many_dims(da: xr.DataArray, var: str, extra: list[Hashable], needs: str) -> InvalidInput:
    listed = ", ".join(f"{d} ({da.sizes[d]})" for d in extra)
    examples = ",".join(_example(da, d) for d in extra)
    return InvalidInput(
        f"{needs}, but {var} still has the dimensions {listed} after the selection; "
        f"select one value of each, e.g. {examples}"
    )


def _needs_time(da: xr.DataArray, var: str, what: str) -> Hashable:
    time = _time(da)
    if time is not None:
        return time
    scalar = [c for c in da.coords if da[c].ndim == 0 and _is_time(da[c])]
    if scalar:
        raise InvalidInput(
            f"{what} needs several time steps, but the selection leaves one; "
            f"select a range instead, e.g. {scalar[0]}=2001:2005"
        )
    raise InvalidInput(
        f"{what} needs a time dimension; {var} has {', '.join(map(str, da.dims)) or 'none'}"
    )


# --- the three kinds ------------------------------------------------------------------


def _prepare_map(da: xr.DataArray, var: str, selection: Selection) -> _Plot:
    grid = _grid(da)
    if grid is None:
        raise InvalidInput(
            f"a map needs latitude and longitude dimensions, or 2-D latitude and longitude "
            f"coordinates; {var} has {', '.join(map(str, da.dims)) or 'none'} after the selection"
        )
    time = _time(da)
    if time is not None and time not in selection.items and time in da.dims:
        da = da.isel({time: 0})
    extra = [d for d in da.dims if d not in grid.dims]
    if extra:
        raise _too_many_dims(da, var, extra, "a map shows one latitude-longitude field")

    def draw(fig: Figure, data: xr.DataArray, cmap: Colormap) -> None:
        ax = fig.add_subplot()
        values = np.ma.masked_invalid(data.transpose(*grid.dims).values)
        if grid.curvilinear:
            # Each cell at its own latitude and longitude: the grid's true shape.
            x = np.asarray(data[grid.lon].transpose(*grid.dims).values, dtype=np.float64)
            y = np.asarray(data[grid.lat].transpose(*grid.dims).values, dtype=np.float64)
            values = np.ma.masked_where(~(np.isfinite(x) & np.isfinite(y)), values)
            # pcolormesh refuses NaN corners; masked cells are not drawn whatever they hold.
            x, y = _filled(x), _filled(y)
        else:
            x, y = _coord(data, grid.lon), _coord(data, grid.lat)
        ax.set_xlabel(_label(data, grid.lon))
        ax.set_ylabel(_label(data, grid.lat))
        ax.set_title(_title(data, var, selection), fontsize="medium")
        if values.count() == 0:
            _no_data(ax)
            return
        mesh = ax.pcolormesh(x, y, values, cmap=cmap, shading="auto")
        if _is_geographic(x, y):
            ax.set_aspect("equal", adjustable="box")
        fig.colorbar(mesh, ax=ax, label=_units(data), shrink=0.9)

    return _Plot(da, _identity, draw)


def _filled(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Missing positions filled along the grid's rows, then columns, by the straight line
    through the row's valid ones: cell edges next to them stay where the grid puts them."""
    finite = np.isfinite(values)
    if finite.all() or not finite.any():
        return values
    out = values
    for axis in (1, 0):
        out = np.apply_along_axis(_line_filled, axis, out)
    return np.where(np.isfinite(out), out, np.nanmean(values))


def _line_filled(line: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    valid = np.isfinite(line)
    if valid.all() or valid.sum() < 2:
        return line
    index = np.arange(line.size, dtype=np.float64)
    slope, intercept = np.polyfit(index[valid], line[valid], 1)
    return np.where(valid, line, slope * index + intercept)


def _prepare_timeseries(da: xr.DataArray, var: str, selection: Selection) -> _Plot:
    time = _needs_time(da, var, "a time series")
    grid = _grid(da)
    lat, lon = _lat(da), _lon(da)
    spatial: list[Hashable] = [d for d in (lat, lon) if d is not None]
    if grid is not None and grid.curvilinear:
        spatial = list(grid.dims)
    extra = [d for d in da.dims if d != time and d not in spatial]
    if extra:
        raise _too_many_dims(da, var, extra, "a time series averages over latitude and longitude")
    weight_by = grid.lat if grid is not None else lat

    def reduce(data: xr.DataArray) -> xr.DataArray:
        if weight_by is not None and weight_by in data.coords:
            # Grid cells shrink towards the poles: weight by their area, cos(latitude).
            cos = np.cos(np.deg2rad(np.asarray(data[weight_by].values, dtype=np.float64)))
            weights = data[weight_by].copy(data=np.nan_to_num(cos).clip(min=0))
            return data.weighted(weights).mean(spatial, keep_attrs=True)
        return data.mean(spatial, keep_attrs=True) if spatial else data

    def draw(fig: Figure, data: xr.DataArray, cmap: Colormap) -> None:
        ax = fig.add_subplot()
        ax.plot(_coord(data, time), data.values, color=_line_colour(cmap), linewidth=1.2)
        _date_axis(ax.xaxis, data, time)
        ax.set_ylabel(_units(data, with_name=True))
        where = "area-weighted mean" if weight_by is not None else "mean" if spatial else ""
        ax.set_title(_title(data, var, selection, where), fontsize="medium")
        ax.grid(True, linewidth=0.4, alpha=0.5)
        if not np.isfinite(data.values).any():
            _no_data(ax)

    return _Plot(da, reduce, draw)


def _prepare_hovmoller(da: xr.DataArray, var: str, selection: Selection) -> _Plot:
    time = _needs_time(da, var, "a Hovmöller diagram")
    lat, lon = _lat(da), _lon(da)
    if lat is None:
        raise InvalidInput(
            f"a Hovmöller diagram needs a latitude dimension; {var} has "
            f"{', '.join(map(str, da.dims))} after the selection"
        )
    extra = [d for d in da.dims if d not in (time, lat, lon)]
    if extra:
        raise _too_many_dims(da, var, extra, "a Hovmöller diagram shows time against latitude")

    def reduce(data: xr.DataArray) -> xr.DataArray:
        return data.mean([lon], keep_attrs=True) if lon is not None else data

    def draw(fig: Figure, data: xr.DataArray, cmap: Colormap) -> None:
        ax = fig.add_subplot()
        values = np.ma.masked_invalid(data.transpose(lat, time).values)
        ax.set_ylabel(_label(data, lat))
        where = "zonal mean" if lon is not None else ""
        ax.set_title(_title(data, var, selection, where), fontsize="medium")
        if values.count() == 0:
            _no_data(ax)
            return
        mesh = ax.pcolormesh(
            _coord(data, time), _coord(data, lat), values, cmap=cmap, shading="auto"
        )
        _date_axis(ax.xaxis, data, time)
        fig.colorbar(mesh, ax=ax, label=_units(data), shrink=0.9)

    return _Plot(da, reduce, draw)


_PREPARE: Mapping[str, Callable[[xr.DataArray, str, Selection], _Plot]] = {
    "map": _prepare_map,
    "timeseries": _prepare_timeseries,
    "hovmoller": _prepare_hovmoller,
}
assert tuple(_PREPARE) == KINDS


# --- drawing helpers ------------------------------------------------------------------


def _identity(data: xr.DataArray) -> xr.DataArray:
    return data


def _coord(data: xr.DataArray, dim: Hashable) -> np.ndarray[Any, Any]:
    if dim in data.coords:
        values = np.asarray(data[dim].values)
        if holds_cftime(values):
            # Matplotlib draws real dates: a model date stands for the real one it names.
            return np.array([np.datetime64(real_date(v)) for v in values.reshape(-1)]).reshape(
                values.shape
            )
        return values
    return np.arange(data.sizes[dim])


def _is_geographic(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bool:
    # Equal aspect only when the axes span a plausible globe, so a thin regional strip does
    # not shrink to a sliver.
    return bool(np.ptp(x) >= np.ptp(y) > 0 and np.ptp(y) <= 180)


def _name(data: xr.DataArray, var: str) -> str:
    attrs = data.attrs
    return str(attrs.get("long_name") or attrs.get("standard_name") or var)


def _units(data: xr.DataArray, *, with_name: bool = False) -> str:
    units = str(data.attrs.get("units", "")).strip()
    if with_name:
        name = _name(data, str(data.name))
        return f"{name} [{units}]" if units else name
    return units


def _label(data: xr.DataArray, dim: Hashable) -> str:
    attrs = data[dim].attrs if dim in data.coords else {}
    name = str(attrs.get("long_name") or dim)
    units = attrs.get("units")
    return f"{name} [{units}]" if units else name


def _title(data: xr.DataArray, var: str, selection: Selection, where: str = "") -> str:
    parts = [_name(data, var)]
    if where:
        parts.append(where)
    stamps = set()
    for name, coord in data.coords.items():
        if coord.ndim == 0 and _is_time(coord):
            stamp = _stamp(coord.values[()])
            parts.append(stamp.replace("T", " "))
            stamps.add(name)
    # The rest of the selection as the user wrote it; a single time step shows as its date.
    rest = {d: v for d, v in selection.items.items() if d not in stamps}
    if rest:
        parts.append(describe(Selection(rest)))
    return ", ".join(parts)


def _stamp(value: Any) -> str:
    """A date to the minute, as the model's calendar writes it (30 February included)."""
    if isinstance(value, np.datetime64):
        text = str(np.datetime_as_string(value, unit="m"))
    else:
        text = value.strftime("%Y-%m-%dT%H:%M")
    return text.removesuffix("T00:00")


def _line_colour(cmap: Colormap) -> tuple[float, float, float, float]:
    # The darker end of the colormap, so a line drawn with "Greys" or "YlOrRd" stays visible.
    ends = [cmap(0.15), cmap(0.85)]

    def luminance(c: tuple[float, float, float, float]) -> float:
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    return min(ends, key=luminance)


def _date_axis(axis: Any, data: xr.DataArray, time: Hashable) -> None:
    if time not in data.coords or not _is_time(data[time]):
        axis.set_label_text(_label(data, time))
        return
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axis.set_major_locator(locator)
    axis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _no_data(ax: Any) -> None:
    ax.text(
        0.5,
        0.5,
        "no valid data in this selection",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="0.3",
    )
