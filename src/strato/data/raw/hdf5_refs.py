"""Fix-ups of kerchunk's references to an HDF5 (NetCDF-4) file, read from the file itself,
so that xarray over the references decodes what xarray decodes from the file.

- Dimensions of datasets without dimension scales. Plain HDF5 files (h5py, instruments)
  give datasets shapes but no named dimensions. netCDF-C, and so xarray opening the file,
  names them ``phony_dim_N``: walking a group's datasets in order, each axis takes the
  first phony dimension of its length that this dataset does not use yet, or a new one;
  N counts on from the file's real dimensions. kerchunk names them ``phony_dim_<axis>``,
  so two datasets whose first axes differ in length claim one dimension with two sizes
  and no client can open the references.
- Fill values. Without a ``_FillValue`` attribute the file masks nothing, but kerchunk
  gives a plain HDF5 dataset the library's default fill (0), which a zarr reader turns
  into ``_FillValue`` and masks every zero.
- Packing with float32 attributes. xarray decodes int16 with float32 ``scale_factor`` and
  ``add_offset`` to float32, choosing the float type from the attributes' type; JSON
  attributes are Python floats, so through Zarr the same data decodes to float64. Such
  arrays declare float32 and unpack with zarr's ``fixedscaleoffset`` filter over the
  original chunks. It rounds once from float64 where xarray's float32 arithmetic rounds
  twice, so values may differ from the file's in the last bit (one float32 step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numcodecs
import numpy as np
import xarray as xr

# Attributes that decode values; moved off arrays that unpack in a filter.
_PACKING = ("scale_factor", "add_offset", "_FillValue", "missing_value")


@dataclass
class _Found:
    dims: dict[str, list[str | None]] = field(default_factory=dict)
    no_fill: set[str] = field(default_factory=set)
    packed: dict[str, dict[str, Any]] = field(default_factory=dict)


def fix_hdf5_references(path: Path, refs: dict[str, Any]) -> None:
    """Apply the fix-ups to ``refs`` (the key -> reference mapping), in place."""
    found = _Found()
    with h5py.File(path, "r") as f:
        _walk(f, "", found, [_count_scales(f)])
    for array, dims in found.dims.items():
        attrs = _doc(refs, f"{array}/.zattrs")
        current = list(attrs.get("_ARRAY_DIMENSIONS", []))
        if attrs and len(current) == len(dims):
            attrs["_ARRAY_DIMENSIONS"] = [
                new or old for old, new in zip(current, dims, strict=True)
            ]
            refs[f"{array}/.zattrs"] = _dumps(attrs)
    for array in found.no_fill:
        meta = _doc(refs, f"{array}/.zarray")
        if meta:
            meta["fill_value"] = None
            refs[f"{array}/.zarray"] = _dumps(meta)
    for array, attrs in found.packed.items():
        unpack_in_filter(refs, array, attrs)


# --- reading the file ------------------------------------------------------------------


def _count_scales(group: h5py.Group) -> int:
    count = 0
    for obj in _members(group):
        if isinstance(obj, h5py.Dataset) and h5py.h5ds.is_scale(obj.id):
            count += 1
        elif isinstance(obj, h5py.Group):
            count += _count_scales(obj)
    return count


def _members(group: h5py.Group) -> list[Any]:
    return [group.get(name) for name in group]


def _walk(group: h5py.Group, prefix: str, found: _Found, counter: list[int]) -> None:
    members = [(name, group.get(name)) for name in group]  # None: a link to nothing
    # netCDF-C numbers the phony dimensions of subgroups first, depth first, and each
    # group makes its own: a subgroup's phony dimensions are not shared with its parent.
    for name, obj in members:
        if isinstance(obj, h5py.Group):
            _walk(obj, f"{prefix}{name}/", found, counter)
    phony: list[tuple[int, str]] = []  # (length, name), in the order they were made
    for name, obj in members:
        if not isinstance(obj, h5py.Dataset):
            continue
        array = prefix + name
        attrs = dict(obj.attrs)
        if "_FillValue" not in attrs:
            found.no_fill.add(array)
        if float32_packed(obj.dtype, attrs) and obj.ndim > 0:
            found.packed[array] = attrs
        if h5py.h5ds.is_scale(obj.id):
            continue  # a scale is its own dimension
        dims: list[str | None] = []
        for axis, length in enumerate(obj.shape):
            if len(obj.dims[axis]):
                dims.append(None)
                continue
            match = next((n for size, n in phony if size == length and n not in dims), None)
            if match is None:
                match = f"phony_dim_{counter[0]}"
                counter[0] += 1
                phony.append((length, match))
            dims.append(match)
        if any(d is not None for d in dims):
            found.dims[array] = dims


def _decoded_dtype(dtype: np.dtype[Any], attrs: dict[str, Any]) -> np.dtype[Any]:
    # Asking xarray's own decoder keeps this in step with how it picks the float type.
    variable = xr.Variable((), np.zeros((), dtype=dtype), attrs)
    decoded: xr.Variable = xr.conventions.decode_cf_variable("v", variable)
    result: np.dtype[Any] = np.dtype(decoded.dtype)
    return result


def float32_packed(dtype: np.dtype[Any], attrs: dict[str, Any]) -> bool:
    """Whether the file decodes to float32 where JSON attributes would decode to float64."""
    if dtype.kind not in "iu" or "_Unsigned" in attrs:
        return False
    if "scale_factor" not in attrs and "add_offset" not in attrs:
        return False
    # One-element arrays as the scalars netCDF-C reads them as, typed as in the file.
    packing = {k: _scalar(attrs[k]) for k in _PACKING if k in attrs}
    as_json = {k: json.loads(json.dumps(_plain(v))) for k, v in packing.items()}
    try:
        in_file = _decoded_dtype(dtype, packing)
        in_json = _decoded_dtype(dtype, as_json)
    except (ValueError, TypeError):
        return False
    return bool(in_file == np.float32 and in_json != in_file)


def _scalar(value: Any) -> Any:
    array = np.asarray(value)
    return array.reshape(-1)[0] if array.size == 1 else value


def _plain(value: Any) -> Any:
    array = np.asarray(value)
    return array.reshape(-1)[0].item() if array.size == 1 else array.tolist()


# --- rewriting references ------------------------------------------------------------------


def unpack_in_filter(refs: dict[str, Any], array: str, attrs: dict[str, Any]) -> None:
    """Declare a float32-packed integer array float32, unpacked by a fixedscaleoffset
    filter; ``attrs`` are the file's attributes with their own types."""
    meta, zattrs = _doc(refs, f"{array}/.zarray"), _doc(refs, f"{array}/.zattrs")
    if not meta or not zattrs:
        return
    stored = np.dtype(meta["dtype"])
    scale = float(_plain(attrs.get("scale_factor", 1.0)))
    offset = float(_plain(attrs.get("add_offset", 0.0)))
    if scale == 0:
        return
    # numcodecs decodes (stored / scale) + offset: its scale is the inverse of CF's.
    unpack = numcodecs.FixedScaleOffset(
        offset=offset, scale=1 / scale, dtype="<f4", astype=stored.str
    )
    filters = meta.get("filters") or []
    if meta.get("compressor"):
        # Compressor last in the filter list: decoding then runs it first, unpacking last.
        filters = [*filters, meta["compressor"]]
        meta["compressor"] = None
    meta["filters"] = [unpack.get_config(), *filters]
    meta["dtype"] = "<f4"
    # What was a fill value in the stored integers is its unpacked float now.
    masked = [_plain(attrs[k]) for k in ("_FillValue", "missing_value") if k in attrs]
    unpacked = [float(np.float32(m / (1 / scale) + offset)) for m in masked if _is_number(m)]
    meta["fill_value"] = unpacked[0] if unpacked else None
    for key in _PACKING:
        zattrs.pop(key, None)
    if len(unpacked) > 1 and unpacked[1] != unpacked[0]:
        zattrs["missing_value"] = unpacked[1]
    refs[f"{array}/.zarray"] = _dumps(meta)
    refs[f"{array}/.zattrs"] = _dumps(zattrs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _doc(refs: dict[str, Any], key: str) -> dict[str, Any]:
    value = refs.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        doc = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))
