"""The built-in processes as job-engine tasks: ``def task(inputs, ctx) -> outputs``.

Each parses its inputs (:mod:`~strato.processes.builtin.domain`, InvalidInput naming the
input), opens the variable in the worker (:mod:`~strato.processes.builtin.sources`),
selects its domain, refuses a domain over the byte budget (``data.byte_budget``,
PayloadTooLarge: 413) before reading it, computes, writes NetCDF or Zarr to
``ctx.result_dir`` and returns ``{"result": {"href": <file name in result_dir>, "type":
<media type>}}``. Inputs and outputs are JSON; nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import xarray as xr
from xarray.core.resample import DataArrayResample

from strato.data.analysis.diagnostics import ACTIONS, groupby_reduce
from strato.data.model.budget import check_budget, human, size_of
from strato.data.settings import DataSettings
from strato.errors import PayloadTooLarge
from strato.job_engine import TaskContext
from strato.processes.builtin.domain import (
    VariableRequest,
    invalid,
    parse_axes,
    parse_choice,
    parse_flag,
    parse_format,
    parse_freq,
    parse_variable,
    require_object,
)
from strato.processes.builtin.grid import (
    apply_domain,
    area_weights,
    axis_dims,
    check_same_grid,
    time_dim,
)
from strato.processes.builtin.reduce import METHODS, Cancelled, reduce_blockwise
from strato.processes.builtin.results import write_result
from strato.processes.builtin.sources import open_source, task_settings, variable_of
from strato.settings import Settings

Outputs = dict[str, Any]
_COMPONENTS = ("month", "season", "year", "day", "dayofyear", "hour")
GROUPINGS = MappingProxyType({f"time.{c}": c for c in _COMPONENTS})
GROUP_ACTIONS = MappingProxyType({a: a for a in ACTIONS})
_RESAMPLERS: Mapping[str, Callable[[DataArrayResample], xr.DataArray]] = MappingProxyType(
    {
        "mean": lambda r: r.mean(),
        "min": lambda r: r.min(),
        "max": lambda r: r.max(),
        "sum": lambda r: r.sum(),
    }
)
RESAMPLE_METHODS = MappingProxyType({m: m for m in _RESAMPLERS})


@contextmanager
def _selected(
    request: VariableRequest, settings: Settings
) -> Iterator[tuple[xr.Dataset, xr.DataArray]]:
    with open_source(request.source, settings) as ds:
        da = variable_of(ds, request)
        yield ds, apply_domain(da, request.domain, request.where("domain"))


def _numbers(da: xr.DataArray, request: VariableRequest) -> xr.DataArray:
    """``da`` if it holds numbers; InvalidInput naming the variable when it holds text
    (a station's name, a flag's meaning), which no reduction, grouping or difference
    computes (numpy's own refusal would be a crash, 500, for the user's choice)."""
    if da.dtype.kind in "USO":
        raise invalid(
            request.where("variable"),
            f"{request.variable} holds text ({da.dtype}), not numbers: only a subset takes it",
        )
    return da


def _budget(settings: Settings) -> int:
    return DataSettings.of(settings).byte_budget


def _check(ctx: TaskContext) -> None:
    if ctx.cancelled():
        raise Cancelled("the job was cancelled")


def _dataset(da: xr.DataArray, source: xr.Dataset, note: str) -> xr.Dataset:
    out = da.to_dataset(name=str(da.name))
    out.attrs = dict(source.attrs)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp} strato: {note}"
    history = str(source.attrs.get("history", "")).strip()
    out.attrs["history"] = f"{line}\n{history}" if history else line  # CF: newest first
    for name in out.variables:
        # Bounds variables are not carried over, so references to them would dangle.
        bounds = out[name].attrs.get("bounds")
        if bounds is not None and bounds not in out.variables:
            out[name].attrs = {k: v for k, v in out[name].attrs.items() if k != "bounds"}
    return out


def _finish(ctx: TaskContext, result: xr.Dataset, inputs: Mapping[str, Any]) -> Outputs:
    _check(ctx)
    ctx.progress(90, "writing the result")
    output = write_result(result, ctx.result_dir, parse_format(inputs))
    ctx.progress(100, "done")
    return {"result": output}


def subset(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """The variable within the domain."""
    args = require_object(inputs)
    request = parse_variable(args)
    parse_format(args)
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(request, settings) as (ds, da):
        check_budget(da, _budget(settings), f"the domain of {request.variable}")
        _check(ctx)
        ctx.progress(10, "reading")
        result = _dataset(da.compute(), ds, f"subset of {request.variable}")
    return _finish(ctx, result, args)


def reduce(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """mean (ave), min, max, sum or std over the given axes (default all); area-weighted
    by cos(latitude) when ``weighted``."""
    args = require_object(inputs)
    request = parse_variable(args)
    method = parse_choice(args, "method", METHODS, "mean")
    axes = parse_axes(args)
    weighted = parse_flag(args, "weighted")
    parse_format(args)
    if weighted and method in ("min", "max"):
        raise invalid("weighted", f"a {method} has no weights; weight a mean, sum or std")
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(request, settings) as (ds, da):
        _numbers(da, request)
        dims = axis_dims(da, axes, "axes") if axes is not None else tuple(da.dims)
        weights = area_weights(da, dims, "weighted") if weighted else None
        check_budget(da, _budget(settings), f"the domain of {request.variable}")
        ctx.progress(5, "reducing")
        reduced = reduce_blockwise(
            da,
            dims,
            method,
            weights=weights,
            progress=lambda done: ctx.progress(5 + int(85 * done), "reducing"),
            cancelled=ctx.cancelled,
        )
        over = ", ".join(map(str, dims))
        result = _dataset(reduced, ds, f"{method} of {request.variable} over {over}")
    return _finish(ctx, result, args)


def _grouping(da: xr.DataArray, args: Mapping[str, Any]) -> str:
    """``time.month`` etc. in terms of the variable's own time coordinate."""
    by = parse_choice(args, "by", GROUPINGS, "time.month")
    name = da[time_dim(da, "by")].name if "time" not in da.coords else "time"
    return f"{name}.{by}"


def _climatology(
    da: xr.DataArray, ds: xr.Dataset, grouping: str, action: str, budget: int
) -> xr.Dataset:
    source = da.to_dataset(name=str(da.name))
    source.attrs = dict(ds.attrs)
    return groupby_reduce(source, str(da.name), grouping, action, byte_budget=budget)


def climatology(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """The variable grouped by a part of its time (``by``: time.month, time.season, ...)
    and each group reduced (``method``: mean, min, max, sum, std, count, first, last)."""
    args = require_object(inputs)
    request = parse_variable(args)
    action = parse_choice(args, "method", GROUP_ACTIONS, "mean")
    parse_format(args)
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(request, settings) as (ds, da):
        if action not in ("count", "first", "last"):  # these take any values
            _numbers(da, request)
        grouping = _grouping(da, args)
        _check(ctx)
        ctx.progress(10, "grouping")
        result = _climatology(da, ds, grouping, action, _budget(settings))
    return _finish(ctx, result, args)


def anomaly(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """The variable minus its climatology (the mean of each group, ``by`` time.month by
    default) over the same domain."""
    args = require_object(inputs)
    request = parse_variable(args)
    parse_format(args)
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(request, settings) as (ds, da):
        grouping = _grouping(_numbers(da, request), args)
        budget = _budget(settings)
        check_budget(da, budget, f"the domain of {request.variable}")
        ctx.progress(10, "computing the climatology")
        clim = _climatology(da, ds, grouping, "mean", budget)[str(da.name)]
        _check(ctx)
        ctx.progress(50, "subtracting it")
        values = da.compute()
        anomalies = values.groupby(grouping) - clim
        group = grouping.partition(".")[2]
        anomalies = anomalies.drop_vars(group, errors="ignore")
        anomalies.name = da.name
        anomalies.attrs = {k: v for k, v in da.attrs.items() if k in ("units", "standard_name")}
        long_name = da.attrs.get("long_name", da.name)
        anomalies.attrs["long_name"] = f"Anomaly of {long_name} from its {grouping} mean"
        result = _dataset(anomalies, ds, f"{request.variable} minus its {grouping} mean")
    return _finish(ctx, result, args)


def resample(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """Time aggregation: the variable resampled to ``freq`` (1MS, QS-DEC, YS, ...) by
    ``method`` (mean, min, max, sum); model calendars (noleap, 360_day) included."""
    args = require_object(inputs)
    request = parse_variable(args)
    freq = parse_freq(args)
    method = parse_choice(args, "method", RESAMPLE_METHODS, "mean")
    parse_format(args)
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(request, settings) as (ds, da):
        dim = time_dim(_numbers(da, request), "freq")
        check_budget(da, _budget(settings), f"the domain of {request.variable}")
        _check(ctx)
        ctx.progress(10, "resampling")
        try:
            resampler = da.compute().resample({dim: freq})
        except (ValueError, TypeError, KeyError) as exc:
            raise invalid("freq", f"cannot resample {dim} by {freq!r}: {exc}") from None
        resampled = _RESAMPLERS[method](resampler)
        resampled.attrs = {
            k: v for k, v in da.attrs.items() if k in ("standard_name", "long_name", "units")
        }
        resampled.attrs["cell_methods"] = f"{dim}: {method} (comment: resampled to {freq})"
        result = _dataset(resampled, ds, f"{request.variable} resampled to {freq}, {method}")
    return _finish(ctx, result, args)


def difference(inputs: dict[str, Any], ctx: TaskContext) -> Outputs:
    """``a`` minus ``b``: two variables (each ``dataset``/``href``, ``variable``,
    ``domain``) on the same grid."""
    args = require_object(inputs)
    first = parse_variable(require_object(args.get("a"), "a"), "a.")
    second = parse_variable(require_object(args.get("b"), "b"), "b.")
    parse_format(args)
    settings = task_settings(ctx)
    ctx.progress(0, "opening")
    with _selected(first, settings) as (ds, a), _selected(second, settings) as (_, b):
        _numbers(a, first), _numbers(b, second)
        check_same_grid(a, b, "b")
        units_a, units_b = a.attrs.get("units"), b.attrs.get("units")
        if units_a is not None and units_b is not None and units_a != units_b:
            raise invalid(
                "b.variable", f"a is in {units_a}, b in {units_b}: they cannot be subtracted"
            )
        _check_pair_budget(a, b, _budget(settings))
        _check(ctx)
        ctx.progress(10, "reading")
        xa, xb = a.compute(), b.compute()
        _check(ctx)
        # Subtracted as arrays: xarray would align the coordinates, and a grid equal to the
        # last digits would lose the points that differ in them.
        diff = xa.copy(data=xa.values - xb.transpose(*_dims(xa)).values)
        diff.name = (
            first.variable
            if first.variable == second.variable
            else (f"{first.variable}_minus_{second.variable}")
        )
        diff.attrs = {"units": units_a} if units_a is not None else {}
        diff.attrs["long_name"] = (
            f"{first.variable} of {first.source.describe()} minus "
            f"{second.variable} of {second.source.describe()}"
        )
        result = _dataset(diff, ds, f"difference {diff.attrs['long_name']}")
    return _finish(ctx, result, args)


def _dims(da: xr.DataArray) -> tuple[Hashable, ...]:
    return tuple(da.dims)


def _check_pair_budget(a: xr.DataArray, b: xr.DataArray, limit: int) -> None:
    size = size_of(a) + size_of(b)
    if size > limit:
        raise PayloadTooLarge(
            f"the difference would read {human(size)} ({size} bytes), more than the limit "
            f"of {human(limit)} ({limit} bytes)"
        )
