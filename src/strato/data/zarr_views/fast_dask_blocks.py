"""Chunks of dask-backed variables computed by walking the dask graph: a fast path.

``compute()`` optimises and orders the whole graph on every call, a cost that grows with
the number of files. Culling the graph, materialised once, to the blocks of one chunk
avoids it. The tasks run in the calling thread: the server's thread pool is the
parallelism, and a chunk must not queue behind a cluster's other work.

A fast path: ``data.fast_dask_blocks = false`` turns it off (each chunk is then
``variable[region].values``, computed by dask's scheduler), and
tests/data/test_zarr_store.py checks that both give the same chunk bytes. What justifies
it: ``bench/dask_blocks.py`` on a 60-file dataset, 1.4-2.0 ms per chunk with it against
6.7-7.9 ms without (3.9-4.8x; bench/RESULTS.md, Dask graph walker, 2026-12-04). On a
single-file dataset it gains nothing measurable: ``bench/zarr_serving.py --quick``
reads ``/zarr`` with the same server CPU on and off (bench/RESULTS.md, Zarr serving,
fast paths off and on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import product
from typing import Any

import numpy as np
import xarray as xr
from dask.local import get_sync
from dask.optimization import cull as _untyped_cull


class DaskBlocks:
    """Reads regions of a dask array by running only the tasks of the blocks they touch."""

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
