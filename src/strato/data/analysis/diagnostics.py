"""Groupby reductions of one variable: climatologies, seasonal and annual statistics.

User words reach xarray only through the fixed tables below. The result is small and computed
here, with the dask scheduler the caller configured (if the data is dask-backed at all).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import cftime
import numpy as np
import xarray as xr
from xarray.core.groupby import DataArrayGroupBy

from strato.data.model.budget import check_budget
from strato.errors import InvalidInput, NotFound


def _mean(g: DataArrayGroupBy) -> xr.DataArray:
    return g.mean()


def _min(g: DataArrayGroupBy) -> xr.DataArray:
    return g.min()


def _max(g: DataArrayGroupBy) -> xr.DataArray:
    return g.max()


def _sum(g: DataArrayGroupBy) -> xr.DataArray:
    return g.sum()


def _std(g: DataArrayGroupBy) -> xr.DataArray:
    return g.std()


def _count(g: DataArrayGroupBy) -> xr.DataArray:
    return g.count()


def _first(g: DataArrayGroupBy) -> xr.DataArray:
    return g.first()


def _last(g: DataArrayGroupBy) -> xr.DataArray:
    return g.last()


ACTIONS: Mapping[str, Callable[..., xr.DataArray]] = MappingProxyType(
    {
        "mean": _mean,
        "min": _min,
        "max": _max,
        "sum": _sum,
        "std": _std,
        "count": _count,
        "first": _first,
        "last": _last,
    }
)

# The CF cell_methods name of each action that has one; first, last and count have none and
# are recorded in the history only.
_CF_METHODS: Mapping[str, str] = MappingProxyType(
    {
        "mean": "mean",
        "min": "minimum",
        "max": "maximum",
        "sum": "sum",
        "std": "standard_deviation",
    }
)

_COMPONENTS = ("month", "season", "year", "day", "dayofyear", "hour")
GROUPERS: tuple[str, ...] = tuple(f"time.{c}" for c in _COMPONENTS)


def groupby_reduce(
    ds: xr.Dataset, var: str, coord: str, action: str, *, byte_budget: int
) -> xr.Dataset:
    """Group ``var`` by ``coord`` and reduce each group with ``action``; computed and small."""
    if var not in ds.data_vars:
        names = ", ".join(map(str, ds.data_vars)) or "none"
        raise NotFound(f"there is no variable {var!r} in this dataset; the variables are {names}")
    da = ds[var]
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; the actions are {', '.join(ACTIONS)}")
    dim = _grouping_dim(da, var, coord)
    check_budget(da, byte_budget, f"grouping {var} by {coord}")
    # compute(), not load(): the input may be a cached dataset that must stay lazy.
    result = ACTIONS[action](da.groupby(coord)).compute()
    result.attrs = _attrs(da, coord, action, dim)
    out = result.to_dataset(name=var)
    out.attrs = dict(ds.attrs)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    note = f"{stamp} strato: {var} grouped by {coord}, {action} of each group"
    history = str(ds.attrs.get("history", "")).strip()
    out.attrs["history"] = f"{note}\n{history}" if history else note  # CF: newest first
    for name in out.coords:
        # Bounds variables are not carried over, so references to them would dangle.
        bounds = out[name].attrs.get("bounds")
        if bounds is not None and bounds not in out.variables:
            out[name].attrs = {k: v for k, v in out[name].attrs.items() if k != "bounds"}
    return out


def _grouping_dim(da: xr.DataArray, var: str, coord: str) -> Hashable:
    """The dimension ``coord`` groups along; raises InvalidInput listing the valid forms."""
    plain = [str(c) for c in da.coords if da[c].ndim == 1]
    if coord in plain:
        return da[coord].dims[0]
    base, dot, component = coord.partition(".")
    if dot and component in _COMPONENTS and base in plain:
        if _holds_dates(da[base]):
            return da[base].dims[0]
        raise InvalidInput(
            f"{coord} needs {base} to hold dates, but {var}'s {base} holds {da[base].dtype} "
            "values; group by a plain coordinate instead"
        )
    raise InvalidInput(
        f"cannot group {var} by {coord!r}; group by one of {', '.join(GROUPERS)} "
        f"(for a time coordinate) or by one of its coordinates: {', '.join(plain) or 'none'}"
    )


def _holds_dates(coord: xr.DataArray) -> bool:
    if np.issubdtype(coord.dtype, np.datetime64):
        return True
    # Non-standard calendars decode to cftime objects, which xarray groups by date too.
    return coord.dtype == object and coord.size > 0 and isinstance(coord.values[0], cftime.datetime)


def _attrs(da: xr.DataArray, coord: str, action: str, dim: Hashable) -> dict[Hashable, Any]:
    attrs: dict[Hashable, Any] = {
        k: v
        for k, v in da.attrs.items()
        if k in ("standard_name", "long_name", "units", "cell_methods", "comment")
    }
    if action == "count":
        # A count of values is a number, not a temperature: keep the name, not the quantity.
        attrs.pop("standard_name", None)
        attrs["units"] = "1"
        attrs["long_name"] = f"Number of valid values of {da.attrs.get('long_name', da.name)}"
    if action in _CF_METHODS:
        method = f"{dim}: {_CF_METHODS[action]} (comment: grouped by {coord})"
        previous = str(attrs.get("cell_methods", "")).strip()
        attrs["cell_methods"] = f"{previous} {method}" if previous else method
    return attrs
