"""Kerchunk references to NetCDF/HDF5 files (served by :mod:`strato.data.raw.raw_store`).

A reference set maps every key of a Zarr v2 store to either inline bytes or a byte range
of an original file, so chunks are sent exactly as they are stored on disk and the
client decodes them with the codecs declared in ``.zarray`` (zlib, shuffle, ...).

Fix-ups applied to kerchunk's output, so that xarray with zarr 3 decodes what xarray
decodes from the source file:

- NetCDF-3: kerchunk turns every attribute into a string and takes ``missing_value`` as
  the fill value; attributes and ``fill_value`` are rebuilt from the file header.
- Coordinates are inlined from the file's own bytes (kerchunk's NetCDF-3 inlining
  re-encodes them with blosc, which a client then needs).
- Combining files: the concatenated coordinate keeps the dtype and fill value of the
  first file (kerchunk's ``cf:`` mode writes int64 with a fill of 2**62).
- ``.zarray`` documents: ``fill_value`` in the forms zarr 3 parses (NaN as "NaN", an
  integer fill as an in-range integer or null), ``filters: []`` as null.
"""

from __future__ import annotations

import base64
import math
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import cftime
import h5py
import numcodecs
import numpy as np
from kerchunk.combine import MultiZarrToZarr
from kerchunk.hdf import SingleHdf5ToZarr

from strato.data.raw.hdf5_refs import fix_hdf5_references, float32_packed, unpack_in_filter
from strato.data.raw.raw_store import RawStore, local_path, read_range
from strato.data.raw.reference_json import (
    REFERENCE_VERSION,
    dumps,
    json_doc,
    normalised,
)
from strato.errors import InvalidInput, NotFound

# What build_references writes for the same files. Raise it whenever its output changes
# (phony dimension names, float32 packing): cached reference files of an older build are
# then rebuilt instead of serving the old answer until the source files change.
BUILD_GENERATION = 2
# Kerchunk inlines any chunk below this many stored bytes: tiny chunks cost more as
# separate file reads than as base64 in the reference file.
INLINE_THRESHOLD = 500
# Coordinates and their bounds are read by every client on every open, so they are
# inlined whole as long as they stay this small (a 0.1° global grid's lon is 28 KiB).
COORDINATE_INLINE_LIMIT = 64 * 1024

_NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02")
# Attributes that change how stored values decode: files combined along a dimension must
# agree on them for every variable, or the concatenated raw chunks would decode wrongly.
_ENCODING_ATTRS = (
    "units",
    "calendar",
    "scale_factor",
    "add_offset",
    "missing_value",
    "_Unsigned",
)


# --- building -------------------------------------------------------------------------


def build_references(paths: Sequence[Path], *, concat_dim: str = "time") -> dict[str, Any]:
    """A kerchunk reference set (version 1) for one file, or for several combined along
    ``concat_dim``; targets are absolute local paths."""
    if not paths:
        raise InvalidInput("no files to reference: give one or more NetCDF/HDF5 files")
    files = [Path(p).resolve() for p in paths]
    if len(set(files)) != len(files):
        raise InvalidInput(f"a file is listed twice: {[str(f) for f in files]}")
    singles = [_translate(f) for f in files]
    refs = singles[0] if len(files) == 1 else _combine(singles, files, concat_dim)
    _inline_coordinates(refs["refs"])
    return {"version": REFERENCE_VERSION, "refs": normalised(refs["refs"])}


def _translate(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    with path.open("rb") as f:
        head = f.read(4)
    if head in _NETCDF3_MAGIC:
        return _translate_netcdf3(path)
    if head == b"CDF\x05":
        raise InvalidInput(
            f"{path}: NetCDF-3 64-bit data (CDF-5) cannot be referenced; raw passthrough "
            "reads NetCDF-3 classic and 64-bit offset, NetCDF-4 and HDF5 files"
        )
    if not h5py.is_hdf5(str(path)):
        raise InvalidInput(
            f"{path}: not a NetCDF or HDF5 file (it starts with {head!r}); raw passthrough "
            "reads NetCDF-3 classic and 64-bit offset, NetCDF-4 and HDF5 files"
        )
    try:
        # error="raise": kerchunk's default skips what it cannot reference with a
        # warning, and the served dataset would silently lack those variables.
        translator = SingleHdf5ToZarr(str(path), inline_threshold=INLINE_THRESHOLD, error="raise")
        try:
            refs: dict[str, Any] = translator.translate()
        finally:
            translator.close()
        # Dimensions, fill values and packing as xarray reads them from the file.
        fix_hdf5_references(path, refs["refs"])
    except Exception as exc:  # kerchunk raises whatever h5py and numcodecs raise
        raise InvalidInput(f"{path}: cannot be referenced: {type(exc).__name__}: {exc}") from exc
    return refs


def _translate_netcdf3(path: Path) -> dict[str, Any]:
    try:
        from kerchunk.netCDF3 import NetCDF3ToZarr
    except ImportError as exc:  # kerchunk reads NetCDF-3 headers with scipy
        raise InvalidInput(f"{path}: NetCDF-3 files cannot be referenced here: {exc}") from exc

    class Translator(NetCDF3ToZarr):  # type: ignore[misc]
        def __setattr__(self, name: str, value: Any) -> None:
            # kerchunk keeps the path as self.filename, which scipy would record as a
            # global attribute, replacing the file's own "filename" if it has one.
            if name == "filename":
                self.__dict__[name] = value
            else:
                super().__setattr__(name, value)

    try:
        # No inlining by kerchunk: it would re-encode the inlined arrays with blosc.
        translator = Translator(str(path), inline_threshold=0)
        try:
            refs: dict[str, Any] = translator.translate()
            # _attributes: the header's values as scipy read them, before kerchunk's str().
            variables = {n: (v._attributes, v.dimensions) for n, v in translator.variables.items()}
            global_attrs = dict(translator._attributes)
        finally:
            translator.close()
    except Exception as exc:  # scipy raises ValueError/TypeError on damaged headers
        raise InvalidInput(f"{path}: cannot be referenced: {type(exc).__name__}: {exc}") from exc
    out = refs["refs"]
    # kerchunk stringifies every attribute and takes missing_value as the fill value;
    # the header's own values decode the way xarray decodes the file.
    out[".zattrs"] = dumps({k: _json_attr(v) for k, v in global_attrs.items()})
    for name, (attrs, dims) in variables.items():
        if f"{name}/.zarray" not in out:
            continue
        zattrs = {k: _json_attr(v) for k, v in attrs.items() if k != "_FillValue"}
        zattrs["_ARRAY_DIMENSIONS"] = list(dims)
        out[f"{name}/.zattrs"] = dumps(zattrs)
        meta = json_doc(out[f"{name}/.zarray"], f"{name}/.zarray")
        fill = attrs.get("_FillValue")
        meta["fill_value"] = None if fill is None else _json_attr(fill)
        out[f"{name}/.zarray"] = dumps(meta)
        if float32_packed(np.dtype(meta["dtype"]), dict(attrs)):
            unpack_in_filter(out, name, dict(attrs))
    return refs


def _json_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            value = value.astype(str)
        return value.reshape(-1)[0].item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- combining ------------------------------------------------------------------------


def _combine(singles: list[dict[str, Any]], files: list[Path], concat_dim: str) -> dict[str, Any]:
    docs = [_array_docs(s["refs"]) for s in singles]
    first = docs[0]
    for path, doc in zip(files[1:], docs[1:], strict=True):
        differ = sorted(set(doc) ^ set(first))
        if differ:
            raise InvalidInput(
                f"{path} and {files[0]} hold different variables ({', '.join(differ)}); "
                f"files combined along {concat_dim!r} must hold the same variables"
            )
    if concat_dim not in first or _dims(first[concat_dim]) != [concat_dim]:
        raise InvalidInput(
            f"{files[0]}: no {concat_dim!r} coordinate variable to combine the files along; "
            "concat_dim must name a dimension with a coordinate variable"
        )
    along = sorted(name for name, doc in first.items() if concat_dim in _dims(doc))
    identical = sorted(set(first) - set(along))
    values = _concat_values(singles, docs, files, concat_dim)
    order = sorted(range(len(files)), key=lambda i: float(values[i][0]))
    for prev, nxt in pairwise(order):
        if values[nxt][0] <= values[prev][-1]:
            raise InvalidInput(
                f"{files[nxt]} overlaps {files[prev]} along {concat_dim!r}: each file must "
                f"cover its own range of {concat_dim}"
            )
    _check_alike(docs, files, along, identical, concat_dim)
    _check_chunk_grid(docs, files, order, along, concat_dim)
    combined: dict[str, Any] = MultiZarrToZarr(
        [str(files[i]) for i in order],
        indicts=[singles[i] for i in order],
        concat_dims=[concat_dim],
        coo_map={concat_dim: [values[i] for i in order]},
        coo_dtypes={concat_dim: values[0].dtype},
        identical_dims=identical,
        inline_threshold=INLINE_THRESHOLD,
    ).translate()
    refs = combined["refs"]
    meta = json_doc(refs[f"{concat_dim}/.zarray"], concat_dim)
    meta["fill_value"] = first[concat_dim][0].get("fill_value")
    refs[f"{concat_dim}/.zarray"] = dumps(meta)
    total = sum(len(v) for v in values)
    if meta["shape"] != [total]:
        raise InvalidInput(
            f"combining {len(files)} files along {concat_dim!r} gave {meta['shape']} steps "
            f"instead of {total}: a {concat_dim} value repeats across files"
        )
    return combined


def _concat_values(
    singles: list[dict[str, Any]],
    docs: list[dict[str, tuple[dict[str, Any], dict[str, Any]]]],
    files: list[Path],
    concat_dim: str,
) -> list[np.ndarray]:
    """Each file's coordinate values, in the units and dtype of the first file."""
    kind = np.dtype(docs[0][concat_dim][0]["dtype"]).kind
    if kind not in "iuf":
        raise InvalidInput(
            f"{files[0]}: {concat_dim!r} holds {docs[0][concat_dim][0]['dtype']} values; "
            "files are combined along a numeric coordinate"
        )
    raw = [_read_coordinate(RawStore(s), concat_dim) for s in singles]
    attrs = [doc[concat_dim][1] for doc in docs]
    units = [(a.get("units"), a.get("calendar", "standard")) for a in attrs]
    for path, values in zip(files, raw, strict=True):
        if values.size == 0:
            raise InvalidInput(f"{path}: {concat_dim!r} is empty")
        if values.size > 1 and not bool(np.all(np.diff(values) > 0)):
            raise InvalidInput(f"{path}: {concat_dim!r} values are not increasing")
    if all(u == units[0] for u in units):
        if all(v.dtype == raw[0].dtype for v in raw):
            return raw  # the stored values themselves, bit for bit
        return [v.astype("float64") for v in raw]
    first_units, calendar = units[0]
    for path, (u, cal), a in zip(files, units, attrs, strict=True):
        if not (isinstance(u, str) and " since " in u and isinstance(first_units, str)):
            raise InvalidInput(
                f"{path}: {concat_dim!r} has units {u!r}, {files[0]} has {first_units!r}; "
                "files can be combined only if their units agree or are 'UNIT since DATE'"
            )
        if cal != calendar:
            raise InvalidInput(
                f"{path}: calendar {cal!r} differs from {calendar!r} in {files[0]}; "
                "files combined along time must share one calendar"
            )
        if "bounds" in a:
            raise InvalidInput(
                f"{path}: {concat_dim!r} has units {u!r}, {files[0]} has {first_units!r}, and "
                f"its bounds {a['bounds']!r} hold raw values in each file's units, which "
                "references cannot convert; combined files must share time units"
            )
    return [
        np.asarray(
            cftime.date2num(cftime.num2date(v, u, calendar=calendar), first_units, calendar),
            dtype="float64",  # another unit can put a value between two integers
        )
        for v, (u, _) in zip(raw, units, strict=True)
    ]


def _check_alike(
    docs: list[dict[str, tuple[dict[str, Any], dict[str, Any]]]],
    files: list[Path],
    along: list[str],
    identical: list[str],
    concat_dim: str,
) -> None:
    def storage(name: str, doc: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
        zarray, zattrs = doc[name]
        dims = _dims(doc[name])
        fields = {
            "shape": [n for d, n in zip(dims, zarray["shape"], strict=False) if d != concat_dim],
            "chunks": zarray["chunks"],
            "dtype": zarray["dtype"],
            "compressor": zarray.get("compressor"),
            "filters": zarray.get("filters") or None,
            "fill_value": repr(zarray.get("fill_value")),
        }
        if name in along:
            fields.update({k: zattrs.get(k) for k in _ENCODING_ATTRS})
        return fields

    for name in along + identical:
        if name == concat_dim:
            continue  # its values are rewritten, in the units of the first file
        want = storage(name, docs[0])
        for path, doc in zip(files[1:], docs[1:], strict=True):
            got = storage(name, doc)
            for field, value in got.items():
                if value != want[field]:
                    raise InvalidInput(
                        f"{path}: {name!r} has {field} {value!r}, {files[0]} has "
                        f"{want[field]!r}; raw chunks can be combined only from files that "
                        "store each variable alike"
                    )


def _check_chunk_grid(
    docs: list[dict[str, tuple[dict[str, Any], dict[str, Any]]]],
    files: list[Path],
    order: list[int],
    along: list[str],
    concat_dim: str,
) -> None:
    # A Zarr array has one regular chunk grid: every file but the last must end on a
    # chunk boundary, or the next file's chunks would land at the wrong steps.
    for name in along:
        if name == concat_dim:
            continue
        for i in order[:-1]:
            zarray, _ = docs[i][name]
            axis = _dims(docs[i][name]).index(concat_dim)
            length, chunk = zarray["shape"][axis], zarray["chunks"][axis]
            if length % chunk:
                raise InvalidInput(
                    f"{files[i]}: {name!r} has {length} steps along {concat_dim!r} in chunks "
                    f"of {chunk}; raw chunks can be combined only when every file but the "
                    "last holds whole chunks"
                )


def _array_docs(refs: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    docs = {}
    for key, value in refs.items():
        if key.endswith("/.zarray"):
            name = key[: -len("/.zarray")]
            attrs = refs.get(f"{name}/.zattrs")
            docs[name] = (json_doc(value, key), json_doc(attrs, key) if attrs else {})
    return docs


def _dims(doc: tuple[dict[str, Any], dict[str, Any]]) -> list[str]:
    return list(doc[1].get("_ARRAY_DIMENSIONS", []))


def _read_coordinate(store: RawStore, name: str) -> np.ndarray:
    """The values of a one-dimensional array, decoded with its declared codecs."""
    meta = store.array_metadata(name)
    (size,), (chunk,) = meta["shape"], meta["chunks"]
    codecs = [numcodecs.get_codec(c) for c in meta.get("filters") or []]
    if meta.get("compressor"):
        codecs.append(numcodecs.get_codec(meta["compressor"]))
    parts = []
    for i in range(math.ceil(size / chunk)):
        data: Any = store.read(f"{name}/{i}")
        for codec in reversed(codecs):
            data = codec.decode(data)
        parts.append(np.frombuffer(bytes(data), dtype=meta["dtype"])[:chunk])
    empty = np.empty(0, dtype=meta["dtype"])
    return np.concatenate(parts)[:size] if parts else empty


# --- inlining and normalising ---------------------------------------------------------


def _inline_coordinates(refs: dict[str, Any]) -> None:
    docs = _array_docs(refs)
    names: set[str] = set()
    for path, doc in docs.items():
        group, _, base = path.rpartition("/")
        if _dims(doc) == [base]:
            names.add(path)
            bounds = doc[1].get("bounds")
            if isinstance(bounds, str):
                names.add(f"{group}/{bounds}" if group else bounds)
    chunks: dict[str, list[str]] = defaultdict(list)
    for key, value in refs.items():
        array = key.rpartition("/")[0]
        if array in names and isinstance(value, list):
            chunks[array].append(key)
    for keys in chunks.values():
        ranges = [refs[k] for k in keys]
        if any(len(r) != 3 for r in ranges) or sum(r[2] for r in ranges) > COORDINATE_INLINE_LIMIT:
            continue
        for key, (url, offset, length) in zip(keys, ranges, strict=True):
            data = read_range(local_path(url, key), offset, length)
            refs[key] = "base64:" + base64.b64encode(data).decode("ascii")
