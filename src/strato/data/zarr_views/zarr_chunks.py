"""Chunks of the Zarr views: the grid chosen for a variable, and the blocks computed for it.

:mod:`strato.data.zarr_views.zarr_store` describes arrays; this module decides how they are cut
and reads one region at a time, lazily (dask-backed variables: see
:mod:`strato.data.zarr_views.fast_dask_blocks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numcodecs
import numpy as np
import xarray as xr

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


def bitround(data: np.ndarray[Any, Any], keepbits: int, exact: tuple[Any, ...]) -> Any:
    rounded = np.asarray(numcodecs.BitRound(keepbits=keepbits).encode(data)).view(data.dtype)
    keep = np.isnan(data)
    for value in exact:
        keep |= data == value
    if keep.any():
        np.copyto(rounded, data, where=keep)
    return rounded
