"""Chunks of the Zarr views: the grid chosen for a variable, and the blocks computed for it.

:mod:`strato.data.zarr_views.zarr_store` describes arrays; this module decides how they are cut and
reads or computes one block at a time, lazily, without a scheduler's threads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from itertools import product
from typing import Any

import numcodecs
import numpy as np
import xarray as xr
from dask.local import get_sync
from dask.optimization import cull as _untyped_cull

MiB = 1 << 20
# A chunk per request: large enough that per-request overhead is small against the
# transfer, small enough that a client's first plot does not wait for much more than it shows.
TARGET_CHUNK_BYTES = 8 * MiB
MAX_CHUNK_BYTES = 16 * MiB
# Index coordinates are read whole by every client on open, so they stay one chunk up to here.
INDEX_CHUNK_LIMIT = 64 * MiB


def choose_chunks(
    variable: xr.Variable,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    itemsize: int,
    requested: Mapping[str, int],
    is_index: bool,
) -> tuple[int, ...]:
    if not shape:
        return ()
    if is_index and math.prod(shape) * itemsize <= INDEX_CHUNK_LIMIT:
        return (max(shape[0], 1),)
    source = source_chunks(variable, dims)
    sizes: list[int | None] = [requested.get(d, source.get(d)) for d in dims]
    free = [i for i, s in enumerate(sizes) if s is None]
    resolved = [n if s is None else s for s, n in zip(sizes, shape, strict=True)]
    # Outermost free dimensions shrink first, so chunks hold whole spatial fields unless
    # one field alone is too large.
    for i in free:
        total = math.prod(max(s, 1) for s in resolved) * itemsize
        if total <= MAX_CHUNK_BYTES:
            break
        per_step = total // max(resolved[i], 1)
        resolved[i] = max(1, TARGET_CHUNK_BYTES // max(per_step, 1))
    return tuple(max(1, min(s, n)) for s, n in zip(resolved, shape, strict=True))


def source_chunks(variable: xr.Variable, dims: tuple[str, ...]) -> dict[str, int]:
    """The chunking of the source: on-disk chunks from the encoding, else dask's."""
    encoding = variable.encoding
    preferred = encoding.get("preferred_chunks")
    if isinstance(preferred, Mapping):
        found = {str(k): int(v) for k, v in preferred.items() if isinstance(v, int | np.integer)}
        if found:
            return found
    for field in ("chunksizes", "chunks"):
        value = encoding.get(field)
        if (
            isinstance(value, tuple | list)
            and len(value) == len(dims)
            and all(isinstance(v, int | np.integer) for v in value)
        ):
            return {d: int(v) for d, v in zip(dims, value, strict=True)}
    if variable.chunks is not None:
        return {d: max(c) for d, c in zip(dims, variable.chunks, strict=True) if c}
    return {}


class LazyReader:
    """Reads regions of a numpy or lazily indexed backend array."""

    def __init__(self, variable: xr.Variable) -> None:
        self._variable = variable

    def __call__(self, region: tuple[slice, ...]) -> Any:
        if not region:
            return self._variable.values
        # Indexing first keeps backend arrays lazy: only this slice is read from the file.
        return self._variable[region].values


class DaskBlocks:
    """Reads regions of a dask array by running only the tasks of the blocks they touch.

    ``compute()`` optimises and orders the whole graph on every call: 8 ms per chunk for
    a 60-file dataset, growing with the number of files. Culling the graph, materialised
    once, to the blocks of one chunk costs well under a millisecond. The tasks run in the
    calling thread: the server's thread pool is the parallelism, and a chunk must not
    queue behind a cluster's other work.
    """

    def __init__(self, variable: xr.Variable) -> None:
        self._array: Any = variable.data
        self._bounds = [np.cumsum((0, *c)) for c in self._array.chunks]
        self._graph: dict[Any, Any] | None = None
        self._keys: Any = None
        self._lock = threading.Lock()

    def __call__(self, region: tuple[slice, ...]) -> Any:
        if not region:
            return self._array.compute(scheduler="synchronous")
        graph, keys = self._materialised()
        ranges = []
        for window, bounds in zip(region, self._bounds, strict=True):
            first = int(np.searchsorted(bounds, window.start, side="right")) - 1
            stop = int(np.searchsorted(bounds, window.stop, side="left"))
            ranges.append(range(first, stop))
        blocks = list(product(*ranges))
        wanted = [nested(keys, index) for index in blocks]
        culled, _ = _cull(graph, wanted)
        values = get_sync(culled, wanted)
        out: np.ndarray[Any, Any] | None = None
        for index, value in zip(blocks, values, strict=True):
            block = np.asarray(value)
            origin = [int(b[i]) for b, i in zip(self._bounds, index, strict=True)]
            source = tuple(
                slice(max(w.start, o) - o, min(w.stop, o + n) - o)
                for w, o, n in zip(region, origin, block.shape, strict=True)
            )
            if len(blocks) == 1:
                return block[source]
            if out is None:
                out = np.empty(tuple(w.stop - w.start for w in region), dtype=block.dtype)
            target = tuple(
                slice(max(w.start, o) - w.start, min(w.stop, o + n) - w.start)
                for w, o, n in zip(region, origin, block.shape, strict=True)
            )
            out[target] = block[source]
        return out

    def _materialised(self) -> tuple[dict[Any, Any], Any]:
        with self._lock:
            if self._graph is None:
                self._graph = dict(self._array.__dask_graph__())
                self._keys = self._array.__dask_keys__()
            return self._graph, self._keys


_cull: Callable[[dict[Any, Any], list[Any]], tuple[dict[Any, Any], Any]] = _untyped_cull


def nested(keys: Any, index: tuple[int, ...]) -> Any:
    for i in index:
        keys = keys[i]
    return keys


def bitround(data: np.ndarray[Any, Any], keepbits: int, exact: tuple[Any, ...]) -> Any:
    rounded = np.asarray(numcodecs.BitRound(keepbits=keepbits).encode(data)).view(data.dtype)
    keep = np.isnan(data)
    for value in exact:
        keep |= data == value
    if keep.any():
        np.copyto(rounded, data, where=keep)
    return rounded
