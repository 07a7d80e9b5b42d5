"""The grid of a variable: finding its axes by CF attributes, selecting a domain from
it, its area weights, and whether two variables share one.

Value and date selections are :mod:`strato.data.model.selection`'s, so a domain means
here what it means in a plot URL; positions and 2-D (curvilinear) latitude and longitude
are added here. Nothing is read but coordinates.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from types import MappingProxyType
from typing import Any

import cftime
import numpy as np
import xarray as xr

from strato.data.model.selection import Range, Selection, apply_selection
from strato.errors import InvalidInput
from strato.processes.builtin.domain import Domain, DomainValue, Index, invalid

# What marks a coordinate as each axis, after its name: CF standard names, units, axis.
_STANDARD = MappingProxyType(
    {
        "lat": {"latitude", "grid_latitude"},
        "lon": {"longitude", "grid_longitude"},
        "level": {
            "air_pressure",
            "height",
            "depth",
            "altitude",
            "model_level_number",
            "atmosphere_hybrid_sigma_pressure_coordinate",
            "atmosphere_sigma_coordinate",
        },
        "time": {"time"},
    }
)
_UNITS = MappingProxyType(
    {
        "lat": {"degrees_north", "degree_north", "degree_N", "degrees_N", "degreeN", "degreesN"},
        "lon": {"degrees_east", "degree_east", "degree_E", "degrees_E", "degreeE", "degreesE"},
    }
)
_AXIS = MappingProxyType({"lat": "Y", "lon": "X", "level": "Z", "time": "T"})
_NAMES = MappingProxyType(
    {
        "lat": ("lat", "latitude", "nav_lat"),
        "lon": ("lon", "longitude", "nav_lon"),
        "level": ("level", "lev", "plev", "depth", "height"),
        "time": ("time",),
    }
)


def find_axis(da: xr.DataArray, word: str, where: str) -> Hashable:
    """The coordinate (or dimension) of ``da`` that ``word`` names: a dimension or
    coordinate name as it is, else the axis word lat/lon/level/time by CF attributes."""
    if word in da.dims or word in da.coords:
        return word
    if word in _STANDARD:
        for known in _NAMES[word]:
            if known in da.coords:
                return known
        for name, coord in da.coords.items():
            attrs = coord.attrs
            if (
                attrs.get("standard_name") in _STANDARD[word]
                or attrs.get("units") in _UNITS.get(word, ())
                or attrs.get("axis") == _AXIS[word]
                or (word == "level" and "positive" in attrs and coord.ndim == 1)
                or (word == "time" and _holds_dates(coord))
            ):
                return name
    dims = ", ".join(map(str, da.dims))
    raise invalid(
        where,
        f"{da.name} has no axis {word!r}; its dimensions are {dims} "
        f"(or name an axis: {', '.join(_STANDARD)})",
    )


def axis_dims(da: xr.DataArray, words: Sequence[str], where: str) -> tuple[Hashable, ...]:
    """The dimensions the axis words or names span (a 2-D latitude spans two)."""
    dims: list[Hashable] = []
    for i, word in enumerate(words):
        name = find_axis(da, word, f"{where}[{i}]")
        spanned = da[name].dims if name in da.coords else (name,)
        dims.extend(d for d in spanned if d not in dims)
    return tuple(dims)


def time_dim(da: xr.DataArray, where: str) -> Hashable:
    name = find_axis(da, "time", where)
    coord = da[name]
    if coord.ndim != 1 or not _holds_dates(coord):
        raise invalid(where, f"{da.name}'s {name} does not hold dates")
    return coord.dims[0]


def apply_domain(da: xr.DataArray, domain: Domain, where: str) -> xr.DataArray:
    """``da`` restricted to ``domain``; lazy, only coordinates are read."""
    for word, value in domain.items.items():
        item = f"{where}.{word}"
        name = find_axis(da, word, item)
        try:
            if isinstance(value, Index):
                da = _by_index(da, name, value, item)
            elif name in da.dims:
                da = apply_selection(da, Selection(MappingProxyType({str(name): value})))
            elif da[name].ndim == 1:
                # A coordinate along another dimension (the latitude of a station axis):
                # select its positions as if it were the dimension.
                dim = da[name].dims[0]
                positions = xr.DataArray(
                    np.arange(da.sizes[dim]), dims=[name], coords={name: da[name].values}
                )
                picked = apply_selection(positions, Selection(MappingProxyType({str(name): value})))
                chosen = picked.values
                da = da.isel({dim: int(chosen) if picked.ndim == 0 else [int(i) for i in chosen]})
            else:
                da = _by_mask(da, name, value, item)
        except InvalidInput as exc:
            if exc.detail.startswith(f"{item}:"):
                raise
            raise invalid(item, exc.detail) from None
        if da.size == 0:
            raise invalid(item, "selects nothing")
    return da


def _by_index(da: xr.DataArray, name: Hashable, value: Index, where: str) -> xr.DataArray:
    if name not in da.dims:
        dims = da[name].dims
        if len(dims) != 1:
            raise invalid(where, f"{name} spans {', '.join(map(str, dims))}: index those")
        name = dims[0]
    size = da.sizes[name]

    def at(i: int | None, default: int) -> int:
        if i is None:
            return default
        j = i + size if i < 0 else i
        if not 0 <= j < size:
            raise invalid(
                where,
                f"index {i} is outside {name}'s {size} positions "
                f"(0 to {size - 1}, or -{size} to -1)",
            )
        return j

    first, last = at(value.first, 0), at(value.last, size - 1)
    if value.scalar:
        return da.isel({name: first})
    if first > last:
        first, last = last, first
    return da.isel({name: slice(first, last + 1)})


def _by_mask(da: xr.DataArray, name: Hashable, value: DomainValue, where: str) -> xr.DataArray:
    """A range of a 2-D coordinate (curvilinear latitude): the bounding block of the
    points inside, the points outside it masked."""
    if not isinstance(value, Range) or any(isinstance(v, str) for v in (value.start, value.stop)):
        raise invalid(where, f"{name} is 2-D: select it by a range of numbers [start, stop]")
    coord = np.asarray(da[name].values, dtype="float64")
    lo = -np.inf if value.start is None else float(value.start)
    hi = np.inf if value.stop is None else float(value.stop)
    lo, hi = min(lo, hi), max(lo, hi)
    inside = (coord >= lo) & (coord <= hi)
    if not inside.any():
        raise invalid(
            where, f"matches nothing: {name} runs from {np.nanmin(coord):g} to {np.nanmax(coord):g}"
        )
    dims = da[name].dims
    box: dict[Hashable, slice] = {}
    for axis, dim in enumerate(dims):
        other = tuple(a for a in range(len(dims)) if a != axis)
        hits = np.flatnonzero(inside.any(axis=other))
        box[dim] = slice(int(hits[0]), int(hits[-1]) + 1)
    da = da.isel(box)
    mask = xr.DataArray(inside[tuple(box[d] for d in dims)], dims=dims)
    return da.where(mask)


def area_weights(da: xr.DataArray, reduced: Sequence[Hashable], where: str) -> xr.DataArray:
    """cos(latitude) over the latitude's dimensions, which must all be reduced."""
    name = find_axis(da, "lat", where)
    lat = da[name]
    missing = [d for d in lat.dims if d not in reduced]
    if missing:
        raise invalid(
            where,
            f"area weights are over {name}, spanning "
            f"{', '.join(map(str, lat.dims))}; reduce over all of them",
        )
    values = np.asarray(lat.values, dtype="float64")
    weights = np.cos(np.deg2rad(values))
    return xr.DataArray(
        np.where(np.isfinite(weights), np.clip(weights, 0, None), 0.0), dims=lat.dims
    )


def check_same_grid(a: xr.DataArray, b: xr.DataArray, where: str) -> None:
    """InvalidInput unless ``a`` and ``b`` have the same dimensions, sizes and coordinates."""
    if dict(a.sizes) != dict(b.sizes) or a.dims != b.dims:
        raise invalid(
            where, f"a and b are not on the same grid: a is {_shape(a)}, b is {_shape(b)}"
        )
    for name in a.coords:
        if name not in b.coords or not set(a[name].dims) <= set(a.dims):
            continue
        x, y = np.asarray(a[name].values), np.asarray(b[name].transpose(*a[name].dims).values)
        if not _same_values(x, y):
            raise invalid(
                where,
                f"a and b are not on the same grid: their {name} differ "
                f"(a: {_extent(x)}, b: {_extent(y)})",
            )


def _same_values(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> bool:
    if x.shape != y.shape:
        return False
    if np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number):
        return bool(np.allclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True))
    try:
        return bool(np.array_equal(x, y))
    except TypeError:  # dates of two calendars (noleap, 360_day) do not compare
        return False


def _shape(da: xr.DataArray) -> str:
    return "(" + ", ".join(f"{d}: {n}" for d, n in da.sizes.items()) + ")"


def _extent(values: np.ndarray[Any, Any]) -> str:
    if values.size == 0:
        return "empty"
    flat = values.ravel()
    return f"{flat.size} values from {_show(flat[0])} to {_show(flat[-1])}"


def _show(value: Any) -> str:
    if isinstance(value, cftime.datetime):
        return str(value.strftime("%Y-%m-%d"))
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="D"))
    if isinstance(value, int | float | np.number):
        return f"{float(value):g}"
    return str(value)


def _holds_dates(coord: xr.DataArray) -> bool:
    if np.issubdtype(coord.dtype, np.datetime64):
        return True
    return (
        coord.dtype == object
        and coord.size > 0
        and isinstance(coord.values.flat[0], cftime.datetime)
    )
