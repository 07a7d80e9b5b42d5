"""Reductions of one variable over any of its axes, streamed block by block.

The variable is read along its first dimension in blocks of about :data:`BLOCK_BYTES`,
the next block read while the current one is reduced (reading holds the HDF5 lock and
libnetcdf's inflate, the reduction numpy; both release the GIL, so on two cores they
overlap). Per block only a few statistics are kept — count, sum, the sum of squared
deviations (combined across blocks as Chan et al. do, so a standard deviation does not
lose digits to cancellation), minimum, maximum — so memory stays a few blocks whatever
the size of the domain, and between blocks progress is reported and cancellation
checked. NaN (missing) values are skipped, as xarray skips them: a mean, minimum, maximum
or standard deviation of no value is NaN, a sum of none is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import xarray as xr

from strato.errors import StratoError

BLOCK_BYTES = 64 * 1024 * 1024
METHODS = MappingProxyType(
    {"mean": "mean", "ave": "mean", "min": "min", "max": "max", "sum": "sum", "std": "std"}
)
_CF = MappingProxyType(
    {"mean": "mean", "min": "minimum", "max": "maximum", "sum": "sum", "std": "standard_deviation"}
)
Array = np.ndarray[Any, Any]


class Cancelled(StratoError):
    code = "cancelled"
    title = "Cancelled"


@dataclass
class _Stats:
    """What a block (or several combined) says about each output cell."""

    n: Array | None = None  # count, or sum of weights
    total: Array | None = None  # (weighted) sum
    m2: Array | None = None  # (weighted) sum of squared deviations from the mean
    extreme: Array | None = None  # min or max


def reduce_blockwise(
    da: xr.DataArray,
    dims: Sequence[Hashable],
    method: str,
    *,
    weights: xr.DataArray | None = None,
    block_bytes: int = BLOCK_BYTES,
    progress: Callable[[float], None] = lambda _: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> xr.DataArray:
    """``method`` (mean, min, max, sum, std) of ``da`` over ``dims``, optionally weighted
    by ``weights`` (whose dimensions are among ``dims``); computed."""
    order = list(da.dims)
    axes = tuple(order.index(d) for d in dims)
    kept = [d for d in order if d not in dims]
    if da.ndim == 0:
        return da.compute()
    lead = order[0]
    float_in = np.issubdtype(da.dtype, np.floating)
    wfull = None
    if weights is not None:
        shape = [da.sizes[d] if d in weights.dims else 1 for d in order]
        inner = [d for d in order if d in weights.dims]
        wfull = np.asarray(weights.transpose(*inner).values, dtype="float64").reshape(shape)
    steps = list(_blocks(da, block_bytes))
    acc = _Stats()
    pieces: list[Array] = []
    for i, (sl, x) in enumerate(_prefetched(da, lead, steps)):
        if cancelled():
            raise Cancelled("the job was cancelled")
        w = None if wfull is None else (wfull[sl] if wfull.shape[0] > 1 else wfull)
        stats = _block_stats(x, axes, method, w, float_in)
        if 0 in axes:
            acc = _combine(acc, stats, method)
        else:
            pieces.append(_finish(stats, method))
        progress((i + 1) / len(steps))
    values = _finish(acc, method) if 0 in axes else np.concatenate(pieces, axis=0)
    out_dtype = da.dtype if method in ("min", "max") or da.dtype == np.float32 else np.float64
    coords = {
        name: coord.variable.load()
        for name, coord in da.coords.items()
        if set(coord.dims) <= set(kept)
    }
    result = xr.DataArray(
        values.astype(out_dtype, copy=False), dims=kept, coords=coords, name=da.name
    )
    result.attrs = _attrs(da, dims, method, weighted=weights is not None)
    return result


def _blocks(da: xr.DataArray, block_bytes: int) -> Iterator[slice]:
    length = da.shape[0]
    per_step = max(1, da.size // max(length, 1)) * da.dtype.itemsize
    step = max(1, block_bytes // per_step)
    chunks = da.chunks
    if chunks is not None and chunks[0]:
        # Whole storage chunks per block: a chunk split between blocks is inflated twice.
        chunk = chunks[0][0]
        step = max(chunk, step // chunk * chunk)
    for start in range(0, length, step):
        yield slice(start, min(start + step, length))


def _prefetched(
    da: xr.DataArray, lead: Hashable, steps: list[slice]
) -> Iterator[tuple[slice, Array]]:
    def read(sl: slice) -> Array:
        return np.asarray(da.isel({lead: sl}).values)

    with ThreadPoolExecutor(1, thread_name_prefix="strato-reduce-read") as pool:
        pending = pool.submit(read, steps[0]) if steps else None
        for k, sl in enumerate(steps):
            assert pending is not None
            x = pending.result()
            pending = pool.submit(read, steps[k + 1]) if k + 1 < len(steps) else None
            yield sl, x


def _block_stats(
    x: Array, axes: tuple[int, ...], method: str, w: Array | None, float_in: bool
) -> _Stats:
    if method in ("min", "max"):
        op = (
            (np.fmin if method == "min" else np.fmax)
            if float_in
            else (np.minimum if method == "min" else np.maximum)
        )
        return _Stats(extreme=op.reduce(x, axis=axes) if axes else x)
    # Most blocks hold no missing value: then the mask and the copy without it are skipped.
    valid = ~np.isnan(x) if float_in and np.isnan(x).any() else None
    x0 = np.where(valid, x, 0) if valid is not None else x
    if w is None:
        n = (
            valid.sum(axis=axes, dtype=np.float64)
            if valid is not None
            else np.full(_reduced_shape(x.shape, axes), _count(x.shape, axes), np.float64)
        )
        total = np.asarray(np.sum(x0, axis=axes, dtype=np.float64))
        wv = valid
    else:
        wv = np.broadcast_to(w, x.shape) * (valid if valid is not None else 1.0)
        n = np.asarray(np.sum(wv, axis=axes, dtype=np.float64))
        total = np.asarray(np.sum(wv * x0, axis=axes, dtype=np.float64))
    stats = _Stats(n=n, total=total)
    if method == "std":
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / n
        dev = x0 - np.expand_dims(np.nan_to_num(mean), axes)
        sq = dev * dev
        stats.m2 = np.asarray(
            np.sum(sq * wv if wv is not None else sq, axis=axes, dtype=np.float64)
        )
    return stats


def _reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return int(np.prod([shape[i] for i in axes])) if axes else 1


def _combine(a: _Stats, b: _Stats, method: str) -> _Stats:
    if a.n is None and a.extreme is None:
        return b
    if method in ("min", "max"):
        assert a.extreme is not None
        assert b.extreme is not None
        op = np.fmin if method == "min" else np.fmax
        return _Stats(extreme=op(a.extreme, b.extreme))
    assert a.n is not None
    assert b.n is not None
    assert a.total is not None
    assert b.total is not None
    n = a.n + b.n
    combined = _Stats(n=n, total=a.total + b.total)
    if method == "std":
        assert a.m2 is not None
        assert b.m2 is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = np.nan_to_num(b.total / b.n) - np.nan_to_num(a.total / a.n)
            cross = np.where(n > 0, delta * delta * a.n * b.n / np.where(n > 0, n, 1), 0.0)
        combined.m2 = a.m2 + b.m2 + cross
    return combined


def _finish(stats: _Stats, method: str) -> Array:
    if method in ("min", "max"):
        assert stats.extreme is not None
        return np.asarray(stats.extreme)
    assert stats.n is not None
    assert stats.total is not None
    if method == "sum":
        return stats.total
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "mean":
            return np.where(stats.n > 0, stats.total / stats.n, np.nan)
        assert stats.m2 is not None
        return np.where(stats.n > 0, np.sqrt(np.maximum(stats.m2, 0) / stats.n), np.nan)


def _attrs(
    da: xr.DataArray, dims: Sequence[Hashable], method: str, *, weighted: bool
) -> dict[Hashable, Any]:
    attrs: dict[Hashable, Any] = {
        k: v for k, v in da.attrs.items() if k in ("standard_name", "long_name", "units")
    }
    where = " ".join(f"{d}:" for d in dims)
    note = f"{where} {_CF[method]}" + (
        " (comment: area-weighted, cos(latitude))" if weighted else ""
    )
    previous = str(da.attrs.get("cell_methods", "")).strip()
    attrs["cell_methods"] = f"{previous} {note}" if previous else note
    return attrs
