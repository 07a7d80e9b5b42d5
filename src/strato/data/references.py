"""Kerchunk references to NetCDF/HDF5 files, and the raw store that serves their chunks.

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
import json
import math
import os
import re
import stat
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import cftime
import h5py
import numcodecs
import numpy as np
from kerchunk.combine import MultiZarrToZarr
from kerchunk.hdf import SingleHdf5ToZarr

from strato.data.confine import as_root_strings, check_path_text, read_resolved, resolve_within
from strato.data.hdf5_refs import fix_hdf5_references, float32_packed, unpack_in_filter
from strato.errors import InvalidInput, NotFound

REFERENCE_VERSION = 1
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

_METADATA_NAMES = (".zgroup", ".zattrs", ".zarray")
_CONSOLIDATED = ".zmetadata"
_NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_INDEX = re.compile(r"[0-9]+")
_TEMPLATE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
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


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``length`` bytes at ``offset`` of the local file ``path``."""

    path: str
    offset: int
    length: int


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
    return {"version": REFERENCE_VERSION, "refs": _normalised(refs["refs"])}


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
    out[".zattrs"] = _dumps({k: _json_attr(v) for k, v in global_attrs.items()})
    for name, (attrs, dims) in variables.items():
        if f"{name}/.zarray" not in out:
            continue
        zattrs = {k: _json_attr(v) for k, v in attrs.items() if k != "_FillValue"}
        zattrs["_ARRAY_DIMENSIONS"] = list(dims)
        out[f"{name}/.zattrs"] = _dumps(zattrs)
        meta = _json_doc(out[f"{name}/.zarray"], f"{name}/.zarray")
        fill = attrs.get("_FillValue")
        meta["fill_value"] = None if fill is None else _json_attr(fill)
        out[f"{name}/.zarray"] = _dumps(meta)
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
    meta = _json_doc(refs[f"{concat_dim}/.zarray"], concat_dim)
    meta["fill_value"] = first[concat_dim][0].get("fill_value")
    refs[f"{concat_dim}/.zarray"] = _dumps(meta)
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
            docs[name] = (_json_doc(value, key), _json_doc(attrs, key) if attrs else {})
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
            data = _pread(_local_path(url, key), offset, length)
            refs[key] = "base64:" + base64.b64encode(data).decode("ascii")


def _normalised(refs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in refs.items():
        name = key.rpartition("/")[2]
        if name == _CONSOLIDATED:
            continue
        if name in _METADATA_NAMES:
            doc = _json_doc(value, key)
            out[key] = _dumps(_fixed_array_meta(doc) if name == ".zarray" else doc)
        else:
            out[key] = value
    return out


def _fixed_array_meta(meta: dict[str, Any]) -> dict[str, Any]:
    meta = dict(meta)
    if meta.get("filters") == []:
        meta["filters"] = None  # zarr 3 warns on an empty list: the v2 spec says null
    try:
        dtype = np.dtype(meta["dtype"])
    except (KeyError, TypeError, ValueError):
        return meta  # structured dtypes are given as lists; their fill is left alone
    meta["fill_value"] = _fixed_fill_value(meta.get("fill_value"), dtype)
    return meta


def _fixed_fill_value(fill: Any, dtype: np.dtype[Any]) -> Any:
    if fill is None:
        return None
    if dtype.kind == "f" and isinstance(fill, float) and not math.isfinite(fill):
        # The v2 spec's strings; json would write bare NaN, which is not JSON.
        return "NaN" if math.isnan(fill) else ("Infinity" if fill > 0 else "-Infinity")
    if dtype.kind in "iu":
        if isinstance(fill, str):
            try:
                fill = float(fill)
            except ValueError:
                return None
        if isinstance(fill, float):
            if not (math.isfinite(fill) and fill.is_integer()):
                return None  # zarr 3 refuses a non-integer fill for integers
            fill = int(fill)
        if isinstance(fill, bool) or not isinstance(fill, int):
            return None
        info = np.iinfo(dtype)
        if dtype.kind == "u" and -(2 ** (info.bits - 1)) <= fill < 0:
            # A signed fill on unsigned data, as netCDF's _Unsigned files carry:
            # the same bits read as unsigned.
            fill += 2**info.bits
        if not info.min <= fill <= info.max:
            return None
    return fill


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _json_doc(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        doc = json.loads(_inline_bytes(value, key) if isinstance(value, str) else value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"reference {key!r}: not a JSON metadata document ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"reference {key!r}: metadata must be a JSON object")
    return doc


def _inline_bytes(value: str, key: str) -> bytes:
    if value.startswith("base64:"):
        try:
            return base64.b64decode(value[len("base64:") :], validate=True)
        except ValueError as exc:
            raise InvalidInput(f"reference {key!r}: invalid base64 data ({exc})") from exc
    return value.encode("utf-8")


# --- files ----------------------------------------------------------------------------


def save_references(refs: dict[str, Any], path: Path) -> None:
    """Write ``refs`` as JSON, atomically: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(refs, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_references(path: Path) -> dict[str, Any]:
    """A reference file (JSON, version 0 or 1), as a version 1 set with templates expanded."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path}: no such reference file") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"{path}: a directory; reference sets are read from JSON files (not Parquet)"
        ) from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{path}: not a JSON reference file ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: a reference file holds a JSON object")
    return {"version": REFERENCE_VERSION, "refs": _normalised(_expanded(doc, str(path)))}


def _expanded(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """The key -> reference mapping of a version 0 or 1 reference set."""
    if "refs" not in doc and "version" not in doc:
        return doc  # version 0: the mapping itself
    if doc.get("version") != REFERENCE_VERSION or not isinstance(doc.get("refs"), dict):
        raise InvalidInput(
            f"{where}: unsupported reference set; expected {{'version': 1, 'refs': {{...}}}} "
            "or a version 0 mapping of keys to references"
        )
    if doc.get("gen"):
        raise InvalidInput(
            f"{where}: 'gen' entries are not supported; expand them into 'refs' first"
        )
    refs: dict[str, Any] = doc["refs"]
    templates = doc.get("templates") or {}
    if not templates:
        return refs

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in templates:
            raise InvalidInput(f"{where}: template {{{{{name}}}}} is not defined")
        return str(templates[name])

    return {
        key: [_TEMPLATE.sub(fill, v[0]), *v[1:]] if isinstance(v, list) and v else v
        for key, v in refs.items()
    }


def _local_path(url: Any, key: str) -> str:
    if not isinstance(url, str):
        raise InvalidInput(f"reference {key!r}: the target must be a file path, not {url!r}")
    scheme = _SCHEME.match(url)
    path = url
    if scheme:
        if scheme.group(1).lower() not in ("file", "local") or "::" in url:
            raise InvalidInput(
                f"reference {key!r} points to {url!r}, which is not a local file; only "
                "absolute local paths and file:// URLs are served"
            )
        path = unquote(urlsplit(url).path)
    if not os.path.isabs(path):
        raise InvalidInput(
            f"reference {key!r} points to {url!r}; targets must be absolute local paths"
        )
    # Not normpath: "lnk/../f" is not "f" when lnk is a symbolic link; RawStore resolves
    # targets the way the kernel does.
    return check_path_text(path, f"reference {key!r}")


def _pread(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise NotFound(f"{path} changed: {length} bytes expected at offset {offset}")
    return data


# --- serving --------------------------------------------------------------------------


class RawStore:
    """A read-only Zarr v2 store over a reference set: metadata and inline chunks from
    memory, other chunks as byte ranges of local files.

    ``allowed_roots``, if given, confines the files the references may point into.
    """

    def __init__(self, refs: dict[str, Any], *, allowed_roots: Iterable[Path] = ()) -> None:
        mapping = _expanded(refs, "reference set")
        roots = as_root_strings(allowed_roots)
        self._entries: dict[str, bytes | ByteRange] = {}
        self._arrays: dict[str, dict[str, Any]] = {}
        consolidated: dict[str, Any] = {}
        paths: dict[str, str] = {}  # url -> checked local path
        sizes: dict[str, int] = {}
        for key, value in mapping.items():
            name = key.rpartition("/")[2]
            if name == _CONSOLIDATED:
                continue  # rebuilt below from the fixed-up documents
            if name in _METADATA_NAMES:
                doc = _json_doc(value, key)
                if name == ".zarray":
                    doc = _fixed_array_meta(doc)
                    self._arrays[key[: -len("/.zarray")]] = doc
                consolidated[key] = doc
                self._entries[key] = _dumps(doc).encode()
            elif isinstance(value, str):
                self._entries[key] = _inline_bytes(value, key)
            elif isinstance(value, bytes):
                self._entries[key] = value
            elif isinstance(value, list) and len(value) in (1, 3):
                url = value[0]
                if url not in paths:
                    paths[url] = self._checked(_local_path(url, key), key, roots, sizes)
                path = paths[url]
                if len(value) == 1:
                    self._entries[key] = ByteRange(path, 0, sizes[path])
                else:
                    offset, length = value[1], value[2]
                    if not (_is_count(offset) and _is_count(length)):
                        raise InvalidInput(
                            f"reference {key!r}: offset and length must be integers >= 0"
                        )
                    self._entries[key] = ByteRange(path, offset, length)
            else:
                raise InvalidInput(
                    f"reference {key!r}: expected [url], [url, offset, length] or inline "
                    "data (text, or base64: followed by base64)"
                )
        if ".zgroup" not in consolidated:
            raise InvalidInput("the reference set has no .zgroup: it is not a Zarr v2 group")
        self._metadata = {"zarr_consolidated_format": 1, "metadata": consolidated}
        self._entries[_CONSOLIDATED] = _dumps(self._metadata).encode()
        self._files = sorted(sizes)

    @staticmethod
    def _checked(path: str, key: str, roots: list[str], sizes: dict[str, int]) -> str:
        """The target resolved once, as the kernel resolves it, and checked; chunks are
        read from that resolved path only, never through a symbolic link (confine)."""
        real = resolve_within(path, roots, f"reference {key!r}")
        try:
            st = os.stat(real)
        except OSError:
            raise InvalidInput(
                f"reference {key!r} points to {path}, which does not exist"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"reference {key!r} points to {path}, which is not a file")
        sizes[real] = st.st_size
        return real

    def metadata(self) -> dict[str, Any]:
        """The consolidated ``.zmetadata`` document."""
        doc: dict[str, Any] = json.loads(_dumps(self._metadata))  # a copy callers may change
        return doc

    def array_metadata(self, name: str) -> dict[str, Any]:
        """The (fixed-up) ``.zarray`` document of one array."""
        try:
            return dict(self._arrays[name])
        except KeyError:
            raise NotFound(f"no variable {name!r}; variables are {self._names()}") from None

    def resolve(self, key: str) -> bytes | ByteRange:
        """What a key holds: bytes from memory, or where to read them."""
        try:
            return self._entries[key]
        except KeyError:
            raise self._missing(key) from None

    def entry(self, key: str) -> bytes | ByteRange | None:
        """What :meth:`resolve` returns, or None for a key the store does not hold."""
        return self._entries.get(key)

    def read(self, key: str) -> bytes:
        target = self.resolve(key)
        if isinstance(target, bytes):
            return target
        data = read_resolved(target.path, target.offset, target.length)
        if data is None:
            where = f"{target.length} bytes expected at offset {target.offset}"
            raise NotFound(f"{target.path} changed: {where}")
        return data

    def keys(self) -> list[str]:
        return list(self._entries)

    def variables(self) -> list[str]:
        return sorted(self._arrays)

    def files(self) -> list[str]:
        return list(self._files)

    def _names(self) -> str:
        names = self.variables()
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return shown or "none"

    def _missing(self, key: str) -> InvalidInput | NotFound:
        """Why a key is not in the store; only runs for keys that are not."""
        array = max((a for a in self._arrays if key.startswith(a + "/")), key=len, default=None)
        if array is None:
            head = key.partition("/")[0]
            if head in _METADATA_NAMES or head == _CONSOLIDATED or "/" not in key:
                return NotFound(f"{key}: no such key; variables are {self._names()}")
            return NotFound(f"{key}: no variable {head!r}; variables are {self._names()}")
        meta = self._arrays[array]
        rest = key[len(array) + 1 :]
        if rest in _METADATA_NAMES:
            return NotFound(f"{key}: no such metadata document")
        shape, chunks = list(meta["shape"]), list(meta["chunks"])
        sep = meta.get("dimension_separator") or "."
        ndim = max(len(shape), 1)
        parts = rest.split(sep)
        if len(parts) != ndim or not all(_INDEX.fullmatch(p) for p in parts):
            sep_name = "dot" if sep == "." else "slash"
            example = f"{array}/{sep.join('0' * ndim)}"
            return InvalidInput(
                f"{key}: a chunk key of {array!r} is {ndim} {sep_name}-separated chunk "
                f"indices, e.g. {example}"
            )
        grid = [math.ceil(n / c) if c else 0 for n, c in zip(shape, chunks, strict=False)] or [1]
        if any(int(p) >= g for p, g in zip(parts, grid, strict=True)):
            return NotFound(
                f"{key}: outside the chunk grid of {array!r} ({' x '.join(map(str, grid))} chunks)"
            )
        return NotFound(
            f"{key}: chunk not stored in the source file; readers use the fill value "
            f"({meta.get('fill_value')!r})"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
