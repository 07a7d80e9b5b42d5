"""The JSON documents of a kerchunk reference set, in the forms zarr 3 parses.

Shared by what builds reference sets (:mod:`strato.data.raw.references`) and what serves
them (:mod:`strato.data.raw.raw_store`).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

from strato.errors import InvalidInput

REFERENCE_VERSION = 1
METADATA_NAMES = (".zgroup", ".zattrs", ".zarray")
CONSOLIDATED = ".zmetadata"


def normalised(refs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in refs.items():
        name = key.rpartition("/")[2]
        if name == CONSOLIDATED:
            continue
        if name in METADATA_NAMES:
            doc = json_doc(value, key)
            out[key] = dumps(fixed_array_meta(doc) if name == ".zarray" else doc)
        else:
            out[key] = value
    return out


def fixed_array_meta(meta: dict[str, Any]) -> dict[str, Any]:
    meta = dict(meta)
    if meta.get("filters") == []:
        meta["filters"] = None  # zarr 3 warns on an empty list: the v2 spec says null
    try:
        dtype = np.dtype(meta["dtype"])
    except (KeyError, TypeError, ValueError):
        return meta  # structured dtypes are given as lists; their fill is left alone
    meta["fill_value"] = fixed_fill_value(meta.get("fill_value"), dtype)
    return meta


def fixed_fill_value(fill: Any, dtype: np.dtype[Any]) -> Any:
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


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def json_doc(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        doc = json.loads(inline_bytes(value, key) if isinstance(value, str) else value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"reference {key!r}: not a JSON metadata document ({exc})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"reference {key!r}: metadata must be a JSON object")
    return doc


def inline_bytes(value: str, key: str) -> bytes:
    if value.startswith("base64:"):
        try:
            return base64.b64decode(value[len("base64:") :], validate=True)
        except ValueError as exc:
            raise InvalidInput(f"reference {key!r}: invalid base64 data ({exc})") from exc
    return value.encode("utf-8")
