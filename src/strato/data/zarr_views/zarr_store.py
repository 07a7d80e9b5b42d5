"""Zarr v2 and v3 views of a dataset: the metadata documents and the encoded chunks.

The view serves the *raw* arrays of a source -- its values as stored, still packed,
with times as numbers -- together with the CF attributes that say how to decode them
(``units``, ``calendar``, ``scale_factor``, ``add_offset``, ``_FillValue``,
``missing_value``, ``coordinates``, ...). A client's xarray then decodes exactly what
opening the source file decodes, and the server does no per-chunk CF work: a chunk is a
slice of the source, padded at the edges, compressed. Computed results, which have no
raw form, are CF-encoded once with xarray's own zarr encoding (:meth:`ZarrView.from_decoded`).

One exception to raw values: integers packed with float32 ``scale_factor``/``add_offset``
are served unpacked (float32, NaN for missing), as xarray unpacks the file. Served packed,
their attributes would reach the client as JSON numbers, Python floats, from which xarray
picks float64 and computes other values than the file gives.

Fill values follow what xarray's zarr writer stores for the same raw data, because
xarray's zarr reader undoes exactly that:

- v2: ``_FillValue`` becomes the array's ``fill_value`` and leaves the attributes; the
  reader turns ``fill_value`` back into ``_FillValue`` (no ``_FillValue``: ``null``).
- v3: the array's ``fill_value`` is NaN for floats and the dtype's zero otherwise, and
  ``_FillValue`` stays an attribute, base64 of a little-endian double for floats; the
  reader decodes that attribute and ignores ``fill_value``.

Chunks: sizes the provider asked for per dimension, else the source's (on-disk chunks
from the encoding, else dask's), else about 8 MiB keeping whole spatial fields. Index
coordinates are always one chunk: every client reads them whole on open.

Variable-length strings (object or numpy ``StringDType`` arrays: NetCDF-4 ``string``
variables, Zarr ``vlen-utf8`` sources, the ``season`` of a groupby result) are served as
what zarr writes for them: v2 dtype ``|O`` with the ``vlen-utf8`` filter, v3 data type
``string`` with the ``vlen-utf8`` codec; both encode a chunk to the same bytes. Object
arrays that hold anything but text are not served; they are listed in
:attr:`ZarrView.skipped`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numcodecs
import numpy as np
import xarray as xr
from xarray.backends.zarr import encode_zarr_variable

from strato.data.model.zarr_encoding import (
    default_fill,
    dumps,
    fill_json,
    holds_cftime,
    holds_text,
    json_attr,
    scalar_fill,
    texts,
    unpacked,
    v2_fill,
    v3_data_type,
    v3_default_fill,
    v3_fill_attr,
)
from strato.data.raw.hdf5_refs import float32_packed
from strato.data.zarr_views.compression import Compression
from strato.data.zarr_views.fast_dask_blocks import DaskBlocks
from strato.data.zarr_views.zarr_chunks import (
    LazyReader,
    bitround,
    choose_chunks,
)
from strato.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

ZarrFormat = Literal[2, 3]


# Mantissa bits of each float width: bit rounding to as many or more is lossless.
_MANTISSA_BITS = {2: 10, 4: 23, 8: 52}
# Attributes naming other variables that describe a variable's position, not its values;
# those variables are never bit-rounded.
_REFERRING_ATTRS = ("coordinates", "bounds", "climatology")
_SERVABLE_KINDS = "biufcSU"
_VLEN_UTF8 = numcodecs.VLenUTF8()
_OBJECT = np.dtype(object)


@dataclass(frozen=True)
class _Array:
    """One served array: where its values come from and how they are cut and encoded."""

    name: str
    variable: xr.Variable
    read: Callable[[tuple[slice, ...]], Any]
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    grid: tuple[int, ...]
    dtype: np.dtype[Any]
    keepbits: int | None
    # Values bit rounding must leave exact, or they would no longer mark missing data.
    exact: tuple[Any, ...]
    pad2: Any
    pad3: Any

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def form(self, zarr_format: ZarrFormat) -> str:
        """The valid chunk keys of this array, for error messages."""
        zeros = ["0"] * len(self.shape)
        if zarr_format == 2:
            key = f"{self.name}/{'.'.join(zeros) or '0'}"
        else:
            key = "/".join([self.name, "c", *zeros])
        if not self.shape:
            return f"{key} (a scalar has one chunk)"
        limits = ", ".join(f"{d} < {n}" for d, n in zip(self.dims, self.grid, strict=True))
        return f"{key} ({len(self.shape)} indices: {limits})"


class ZarrView:
    """A dataset as a Zarr v2 store and a Zarr v3 store, read-only, under one prefix.

    ``raw`` holds encoded values with the CF encoding attributes (as opened with
    ``decode_cf=False``); its variables may be lazily indexed backend arrays, dask
    arrays or numpy. ``chunks`` sets chunk sizes per dimension; other dimensions use the
    source's chunks, or about 8 MiB per chunk keeping whole spatial fields.
    Everything is computed here, once: :meth:`get` only reads, so it is thread-safe.
    """

    def __init__(
        self,
        raw: xr.Dataset,
        compression: Compression = Compression(),
        chunks: Mapping[str, int] | None = None,
        *,
        fast_dask_blocks: bool = True,
    ) -> None:
        self.compression = compression
        requested = _checked_chunks(raw, chunks or {})
        self._compressor = compression.compressor()
        self.skipped: dict[str, str] = {}

        variables, global_attrs = _with_encoded_coordinates(raw)
        positional = _positional_names(variables, global_attrs, raw)
        self._arrays: dict[str, _Array] = {}
        for key, variable in variables.items():
            name = str(key)
            if float32_packed(variable.dtype, dict(variable.attrs)):
                variable = unpacked(name, variable)
            why_not = _unservable(name, variable)
            if why_not is None and variable.dtype.kind in "mM":
                # Decoded times in a raw dataset: encode them the way xarray's zarr writer does.
                variable = encode_zarr_variable(variable, name=name)
                why_not = _unservable(name, variable)
            if why_not is not None:
                self.skipped[name] = why_not
                log.info("not served as Zarr: %s: %s", name, why_not)
                continue
            self._arrays[name] = _array(
                name,
                variable,
                requested,
                is_index=variable.dims == (key,),
                keepbits=None if name in positional else compression.bitround_keepbits,
                fast_dask_blocks=fast_dask_blocks,
            )

        attrs = {str(k): json_attr(v) for k, v in global_attrs.items()}
        self._v2_meta = self._build_v2(attrs)
        self._v3_meta = self._build_v3(attrs)
        self._v2_docs = {k: dumps(v) for k, v in self._v2_meta["metadata"].items()}
        self._v2_docs[".zmetadata"] = dumps(self._v2_meta)
        self._v3_docs = {
            f"{k}/zarr.json": dumps(v)
            for k, v in self._v3_meta["consolidated_metadata"]["metadata"].items()
        }
        self._v3_docs["zarr.json"] = dumps(self._v3_meta)

    @classmethod
    def from_decoded(
        cls,
        ds: xr.Dataset,
        compression: Compression = Compression(),
        chunks: Mapping[str, int] | None = None,
        *,
        fast_dask_blocks: bool = True,
    ) -> ZarrView:
        """A view of decoded data (e.g. a computed result), CF-encoded as xarray's zarr
        writer encodes it: times as numbers with units, NaN-masked values with _FillValue,
        non-index coordinates in ``coordinates`` attributes.

        Packing encodings inherited from a source (integer ``dtype``, ``scale_factor``,
        ``add_offset``) are dropped: computed values are served exactly as computed, not
        re-quantised to the source's steps.
        """
        trimmed = ds.copy(deep=False)
        for variable in trimmed.variables.values():
            if variable.dtype.kind not in "mM" and not holds_cftime(variable):
                variable.encoding = {
                    k: v
                    for k, v in variable.encoding.items()
                    if k not in ("dtype", "scale_factor", "add_offset", "_Unsigned")
                }
        variables, attrs = xr.conventions.encode_dataset_coordinates(trimmed)
        encoded: dict[Hashable, xr.Variable] = {}
        for name, variable in variables.items():
            if variable.dtype.kind == "O" and not holds_cftime(variable):
                encoded[name] = variable  # strings served as such, others skipped
                continue
            try:
                encoded[name] = encode_zarr_variable(variable, name=name)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"variable {name!r} cannot be encoded as Zarr: {exc}") from exc
        return cls(
            xr.Dataset(encoded, attrs=attrs),
            compression,
            chunks,
            fast_dask_blocks=fast_dask_blocks,
        )

    # --- public reading API --------------------------------------------------------------

    def variables(self) -> list[str]:
        """Names of the served arrays, coordinates included, in dataset order."""
        return list(self._arrays)

    def variable_nbytes(self, var: str) -> int:
        """Uncompressed bytes of one served array."""
        return self._array_named(var, var).nbytes

    def chunk_shape(self, var: str) -> tuple[int, ...]:
        return self._array_named(var, var).chunks

    def v2_metadata(self) -> dict[str, Any]:
        """The consolidated ``.zmetadata`` document (a fresh copy)."""
        result: dict[str, Any] = json.loads(self._v2_docs[".zmetadata"])
        return result

    def v3_metadata(self) -> dict[str, Any]:
        """The root ``zarr.json``, with consolidated metadata (a fresh copy)."""
        result: dict[str, Any] = json.loads(self._v3_docs["zarr.json"])
        return result

    def get(self, key: str, zarr_format: ZarrFormat) -> bytes:
        """A metadata document as JSON bytes, or an encoded chunk."""
        if zarr_format == 2:
            doc = self._v2_docs.get(key)
        elif zarr_format == 3:
            doc = self._v3_docs.get(key)
        else:
            raise InvalidInput(f"zarr_format is 2 or 3, not {zarr_format!r}")
        if doc is not None:
            return doc
        name, slash, rest = key.partition("/")
        if not slash:
            raise self._unknown_root_key(key, zarr_format)
        array = self._array_named(name, key)
        return self._chunk(array, self._chunk_index(array, key, rest, zarr_format), zarr_format)

    # --- metadata ------------------------------------------------------------------------

    def _build_v2(self, attrs: dict[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {".zgroup": {"zarr_format": 2}, ".zattrs": attrs}
        for name, array in self._arrays.items():
            var_attrs = {str(k): v for k, v in array.variable.attrs.items()}
            fill = var_attrs.pop("_FillValue", None)
            fill_json = None
            if fill is not None and array.dtype != _OBJECT:
                fill_json = v2_fill(fill, array.dtype)
                if fill_json is None:
                    # Not representable as this dtype's fill_value: keep it as an attribute,
                    # which xarray reads as _FillValue all the same.
                    var_attrs["_FillValue"] = fill
            zattrs = {k: json_attr(v) for k, v in var_attrs.items()}
            zattrs["_ARRAY_DIMENSIONS"] = list(array.dims)
            filters = None
            if array.keepbits is not None:
                filters = [numcodecs.BitRound(keepbits=array.keepbits).get_config()]
            if array.dtype == _OBJECT:
                filters = [_VLEN_UTF8.get_config()]
            metadata[f"{name}/.zattrs"] = zattrs
            metadata[f"{name}/.zarray"] = {
                "shape": list(array.shape),
                "chunks": list(array.chunks),
                "dtype": array.dtype.str,
                "fill_value": fill_json,
                "order": "C",
                "filters": filters,
                "dimension_separator": ".",
                "compressor": self._compressor.get_config() if self._compressor else None,
                "zarr_format": 2,
            }
        return {"metadata": metadata, "zarr_consolidated_format": 1}

    def _build_v3(self, attrs: dict[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        for name, array in self._arrays.items():
            attributes: dict[str, Any] = {}
            for k, v in array.variable.attrs.items():
                if k != "_FillValue":
                    attributes[str(k)] = json_attr(v)
                elif v is not None and array.dtype.kind not in "SUO":
                    attributes["_FillValue"] = v3_fill_attr(v, array.dtype)
                # xarray's v3 reader cannot decode a string _FillValue: leaving it out
                # keeps the array readable, and strings are never masked by it anyway.
            codecs: list[dict[str, Any]] = []
            if array.keepbits is not None:
                codecs.append(
                    {"name": "numcodecs.bitround", "configuration": {"keepbits": array.keepbits}}
                )
            if array.dtype == _OBJECT:
                codecs.append({"name": "vlen-utf8", "configuration": {}})
            elif array.dtype.kind in "bS" or array.dtype.itemsize == 1:
                codecs.append({"name": "bytes"})
            else:
                codecs.append({"name": "bytes", "configuration": {"endian": "little"}})
            compressor = self.compression.v3_codec(array.dtype)
            if compressor is not None:
                codecs.append(compressor)
            metadata[name] = {
                "shape": list(array.shape),
                "data_type": v3_data_type(array.dtype),
                "chunk_grid": {
                    "name": "regular",
                    "configuration": {"chunk_shape": list(array.chunks)},
                },
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill_json(array.pad3, array.dtype),
                "codecs": codecs,
                "attributes": attributes,
                "dimension_names": list(array.dims),
                "zarr_format": 3,
                "node_type": "array",
                "storage_transformers": [],
            }
        return {
            "attributes": attrs,
            "zarr_format": 3,
            "consolidated_metadata": {
                "kind": "inline",
                "must_understand": False,
                "metadata": metadata,
            },
            "node_type": "group",
        }

    # --- keys ----------------------------------------------------------------------------

    def _names(self) -> str:
        names = list(self._arrays)
        return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") or "none"

    def _array_named(self, name: str, key: str) -> _Array:
        array = self._arrays.get(name)
        if array is None:
            why = f" (not served: {self.skipped[name]})" if name in self.skipped else ""
            raise NotFound(f"{key}: no variable {name!r}{why}; variables are {self._names()}")
        return array

    def _unknown_root_key(self, key: str, zarr_format: ZarrFormat) -> NotFound:
        other = 3 if zarr_format == 2 else 2
        if key in (self._v3_docs if zarr_format == 2 else self._v2_docs):
            return NotFound(f"{key} is a Zarr v{other} key, not a Zarr v{zarr_format} key")
        if zarr_format == 2:
            return NotFound(
                f"{key}: no such key; the Zarr v2 root keys are .zmetadata, .zgroup, .zattrs"
            )
        return NotFound(f"{key}: no such key; the Zarr v3 root key is zarr.json")

    def _chunk_index(
        self, array: _Array, key: str, rest: str, zarr_format: ZarrFormat
    ) -> tuple[int, ...]:
        other_docs = self._v3_docs if zarr_format == 2 else self._v2_docs
        if key in other_docs:
            other = 3 if zarr_format == 2 else 2
            raise NotFound(
                f"{key} is a Zarr v{other} key; in Zarr v{zarr_format} the chunks of "
                f"{array.name!r} are {array.form(zarr_format)}"
            )
        parts: list[str] | None
        if zarr_format == 2:
            parts = rest.split(".")
            if not array.shape:
                parts = [] if parts == ["0"] else None
        elif rest == "c":
            parts = []
        elif rest.startswith("c/"):
            parts = rest[2:].split("/")
        else:
            parts = None
        if (
            parts is None
            or len(parts) != len(array.shape)
            or not all(p.isascii() and p.isdigit() for p in parts)
        ):
            raise InvalidInput(
                f"{key}: a Zarr v{zarr_format} chunk key of {array.name!r} is "
                f"{array.form(zarr_format)}"
            )
        index = tuple(int(p) for p in parts)
        if any(i >= n for i, n in zip(index, array.grid, strict=True)):
            raise NotFound(f"{key}: chunk index out of range; chunks are {array.form(zarr_format)}")
        return index

    # --- chunks --------------------------------------------------------------------------

    def _chunk(self, array: _Array, index: tuple[int, ...], zarr_format: ZarrFormat) -> bytes:
        region = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, array.chunks, array.shape, strict=True)
        )
        data = np.asarray(array.read(region), dtype=array.dtype)
        if data.shape != array.chunks:
            # The Zarr specs make every chunk full-size; the part outside the array holds
            # the fill value and is never shown to a reader.
            pad = array.pad2 if zarr_format == 2 else array.pad3
            full = np.full(array.chunks, pad, dtype=array.dtype)
            full[tuple(slice(0, s) for s in data.shape)] = data
            data = full
        if array.keepbits is not None:
            data = bitround(data, array.keepbits, array.exact)
        encoded: Any
        if array.dtype == _OBJECT:
            encoded = _VLEN_UTF8.encode(texts(data))
        else:
            encoded = np.ascontiguousarray(data)
        if self._compressor is None:
            return bytes(encoded) if array.dtype == _OBJECT else encoded.tobytes()
        return bytes(self._compressor.encode(encoded))


# --- building arrays -------------------------------------------------------------------------


def _checked_chunks(raw: xr.Dataset, chunks: Mapping[str, int]) -> dict[str, int]:
    dims = [str(d) for d in raw.dims]
    checked: dict[str, int] = {}
    for dim, size in chunks.items():
        if dim not in dims:
            raise InvalidInput(
                f"chunks names {dim!r}, which is not a dimension; dimensions are {', '.join(dims)}"
            )
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise InvalidInput(f"chunks: {dim}={size!r} must be a whole number of at least 1")
        checked[dim] = int(size)
    return checked


def _with_encoded_coordinates(
    raw: xr.Dataset,
) -> tuple[Mapping[Hashable, xr.Variable], Mapping[Any, Any]]:
    """Non-index coordinates written to ``coordinates`` attributes, as xarray writes them."""
    try:
        variables, attrs = xr.conventions.encode_dataset_coordinates(raw)
    except ValueError as exc:
        log.warning("coordinates kept as they are: %s", exc)
        return dict(raw.variables), dict(raw.attrs)
    return variables, attrs


def _positional_names(
    variables: Mapping[Hashable, xr.Variable], attrs: Mapping[Any, Any], raw: xr.Dataset
) -> set[str]:
    """Coordinates, bounds and encoded times: values that locate data, never rounded."""
    names = {str(n) for n in raw.coords} | {str(d) for d in raw.dims}
    names.update(str(attrs.get("coordinates", "")).split())
    for name, variable in variables.items():
        for attr in _REFERRING_ATTRS:
            value = variable.attrs.get(attr)
            if isinstance(value, str):
                names.update(value.split())
        if " since " in str(variable.attrs.get("units", "")):
            names.add(str(name))
    return names


def _unservable(name: str, variable: xr.Variable) -> str | None:
    if "/" in name or not name or name.startswith("."):
        return "its name cannot be a Zarr array name"
    kind = variable.dtype.kind
    if kind == "T":
        return None  # numpy's variable-length strings
    if kind == "O":
        if holds_text(variable):
            return None
        return "object dtype holding other than text has no Zarr data type"
    if kind not in _SERVABLE_KINDS + "mM":
        return f"dtype {variable.dtype} has no Zarr data type"
    if kind in "SU" and variable.dtype.itemsize == 0:
        return "zero-width strings have no Zarr data type"
    return None


def _array(
    name: str,
    variable: xr.Variable,
    requested: Mapping[str, int],
    *,
    is_index: bool,
    keepbits: int | None,
    fast_dask_blocks: bool,
) -> _Array:
    dtype = variable.dtype
    if dtype.kind in "OT":
        dtype = _OBJECT  # variable-length text, whichever way numpy holds it
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
        dtype = dtype.newbyteorder("<")
    dims = tuple(str(d) for d in variable.dims)
    shape = tuple(int(n) for n in variable.shape)
    chunks = choose_chunks(variable, dims, shape, dtype.itemsize, requested, is_index)
    grid = tuple(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True))
    if keepbits is not None and (
        dtype.kind != "f" or keepbits >= _MANTISSA_BITS.get(dtype.itemsize, 0)
    ):
        keepbits = None
    exact: tuple[Any, ...]
    pad2: Any
    pad3: Any
    if dtype == _OBJECT:
        exact = ()
        pad2 = pad3 = ""  # what zarr gives the unwritten part of a string array
    else:
        fill = scalar_fill(variable.attrs.get("_FillValue"), dtype)
        exact = tuple(
            v
            for v in (fill, scalar_fill(variable.attrs.get("missing_value"), dtype))
            if v is not None
        )
        v3_fill = variable.encoding.get("fill_value")
        pad2 = fill if fill is not None else default_fill(dtype)
        pad3 = scalar_fill(v3_fill, dtype) if v3_fill is not None else v3_default_fill(dtype)
    return _Array(
        name=name,
        variable=variable,
        read=(
            DaskBlocks(variable)
            if fast_dask_blocks and variable.chunks is not None
            else LazyReader(variable)
        ),
        dims=dims,
        shape=shape,
        chunks=chunks,
        grid=grid,
        dtype=dtype,
        keepbits=keepbits,
        exact=exact,
        pad2=pad2,
        pad3=pad3,
    )
