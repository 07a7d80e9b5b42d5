"""Fill values, data types and JSON of the Zarr documents that
:mod:`strato.data.zarr_views.zarr_store` serves.

What xarray's zarr writer stores for the same raw data, because xarray's zarr reader
undoes exactly that (the module docstring of ``zarr_store`` says how, per format).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

import cftime
import numpy as np
import xarray as xr
from xarray.backends.zarr import FillValueCoder


def scalar_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """``value`` as one scalar of ``dtype``, or None when it is not exactly one."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.size != 1:
        return None
    item = array.reshape(-1)[0]
    if dtype.kind in "SU":
        if dtype.kind == "S" and isinstance(item, str | np.str_):
            item = str(item).encode()
        try:
            cast = np.asarray(item, dtype=dtype)
        except (ValueError, TypeError, UnicodeEncodeError):
            return None
        return cast[()] if cast[()] == item else None
    try:
        with np.errstate(all="ignore"):
            cast = np.asarray(item).astype(dtype)
    except (ValueError, TypeError):
        return None
    same = cast == item or (dtype.kind in "fc" and bool(np.isnan(cast)) and bool(np.isnan(item)))
    return cast[()] if same else None


def default_fill(dtype: np.dtype[Any]) -> Any:
    return np.zeros((), dtype=dtype)[()]


def v3_default_fill(dtype: np.dtype[Any]) -> Any:
    # xarray's writer gives float arrays a NaN fill_value, others the dtype's zero.
    if dtype.kind in "fc":
        return np.asarray(np.nan, dtype=dtype)[()]
    return default_fill(dtype)


def _float_json(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def v2_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """The ``.zarray`` fill_value for a _FillValue, as zarr writes it; None if impossible."""
    scalar = scalar_fill(value, dtype)
    if scalar is None:
        return None
    return fill_json(scalar, dtype)


def fill_json(scalar: Any, dtype: np.dtype[Any]) -> Any:
    kind = dtype.kind
    if kind == "O":
        return str(scalar)
    if kind == "b":
        return bool(scalar)
    if kind in "iu":
        return int(scalar)
    if kind == "f":
        return _float_json(float(scalar))
    if kind == "c":
        return [_float_json(float(scalar.real)), _float_json(float(scalar.imag))]
    if kind == "S":
        return base64.standard_b64encode(bytes(scalar)).decode()
    return str(scalar)


def v3_fill_attr(value: Any, dtype: np.dtype[Any]) -> Any:
    """The ``_FillValue`` attribute as xarray's v3 writer encodes it for its reader."""
    array = np.asarray(value)
    if array.size == 1:
        item = array.reshape(-1)[0]
        try:
            return FillValueCoder.encode(
                item.item() if isinstance(item, np.generic) else item, dtype
            )
        except (TypeError, ValueError):
            pass
    return json_attr(value)


def unpacked(name: str, variable: xr.Variable) -> xr.Variable:
    """A variable packed with float32 scale_factor/add_offset, unpacked as xarray unpacks
    the file: to float32, missing values as NaN. Served packed, its JSON attributes would
    be Python floats and decode to float64, with other values than the file's."""
    decoded = xr.conventions.decode_cf_variable(
        name,
        variable,
        concat_characters=False,
        decode_times=False,
        decode_timedelta=False,
    )
    attrs = dict(decoded.attrs)
    attrs["_FillValue"] = np.float32(np.nan)  # decoded missing values, never masking more
    return xr.Variable(decoded.dims, decoded.data, attrs, dict(decoded.encoding))


def holds_cftime(variable: xr.Variable) -> bool:
    """Whether an object array holds model-calendar dates, which encode to numbers."""
    if variable.size == 0:
        return False
    first = variable[(0,) * variable.ndim].values
    return isinstance(first[()] if isinstance(first, np.ndarray) else first, cftime.datetime)


def holds_text(variable: xr.Variable) -> bool:
    """Whether an object array holds strings; one element tells, and reading it is cheap."""
    if variable.encoding.get("dtype") is str:
        return True
    if variable.size == 0:
        return True
    first = variable[(0,) * variable.ndim].values
    return isinstance(first[()] if isinstance(first, np.ndarray) else first, str | bytes)


def texts(data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A chunk of strings as vlen-utf8 encodes them: missing values (None, NaN) are empty."""
    flat = [
        v if isinstance(v, str) else v.decode("utf-8", "replace") if isinstance(v, bytes) else ""
        for v in data.reshape(-1)
    ]
    return np.array(flat, dtype=object).reshape(data.shape)


def v3_data_type(dtype: np.dtype[Any]) -> Any:
    kind = dtype.kind
    if kind == "O":
        return "string"
    if kind == "b":
        return "bool"
    if kind in "iufc":
        family = {"i": "int", "u": "uint", "f": "float", "c": "complex"}[kind]
        return f"{family}{dtype.itemsize * 8}"
    if kind == "S":
        return {"name": "null_terminated_bytes", "configuration": {"length_bytes": dtype.itemsize}}
    return {"name": "fixed_length_utf32", "configuration": {"length_bytes": dtype.itemsize}}


def json_attr(value: Any) -> Any:
    """An attribute as JSON, the way xarray hands attributes to zarr (arrays as lists)."""
    if isinstance(value, np.ndarray):
        return [json_attr(v) for v in value.tolist()] if value.ndim else json_attr(value[()])
    if isinstance(value, np.generic):
        return json_attr(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [json_attr(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_attr(v) for k, v in value.items()}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)


def dumps(doc: Any) -> bytes:
    # NaN as a bare token, as zarr-python itself writes attributes.
    return json.dumps(doc, allow_nan=True, separators=(",", ":")).encode()
