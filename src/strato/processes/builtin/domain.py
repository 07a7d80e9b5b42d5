"""The request of a built-in process, parsed and checked before any data is read.

Pure: JSON inputs in, frozen values out, no file or database touched. Every error is
:class:`strato.errors.InvalidInput` naming the input by its JSON path (``domain.lat``,
``b.variable``), in the detail and in ``errors`` (``field``, ``message``), the way the
catalog's inputs report theirs.

A domain is what the plot URLs select (:mod:`strato.data.model.selection`), as a JSON
object or as that URL syntax in one string::

    {"lat": [-30, 30], "lon": {"start": 0, "stop": 90}, "time": "2001-06",
     "level": {"index": 0}, "x": {"index": [10, 19]}}
    "time=2001:2003,lat=-30:30"

Keys are dimension names or the axis words ``lat``, ``lon``, ``level`` and ``time``,
which find the variable's axis by its CF attributes. A value is a number (the nearest
point), a date or a prefix of one (the whole period, in the axis's own calendar), a range
``[start, stop]`` / ``{"start", "stop"}`` / ``"a:b"`` of numbers or dates (inclusive,
either end open), or ``{"index": i}`` / ``{"index": [first, last]}`` by position
(inclusive, negative from the end).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from strato.data.model.selection import MAX_ITEMS, Range, Value, parse_selection
from strato.errors import InvalidInput

AXIS_WORDS = ("lat", "lon", "level", "time")
FORMATS: Mapping[str, str] = MappingProxyType(
    {"netcdf": "application/x-netcdf", "zarr": "application/vnd+zarr"}
)
Format = Literal["netcdf", "zarr"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_DIM = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# pandas offset aliases xarray resamples by, on datetime64 and cftime axes alike:
# 1MS, QS-DEC, YS, 6h, 5D, W-MON. A fixed grammar: user text reaches pandas only if it fits.
_FREQ = re.compile(r"(?:[1-9][0-9]{0,3})?(?:MS|ME|QS|QE|YS|YE|D|h|min|W)(?:-[A-Z]{3})?")
MAX_PATH = 4096


def invalid(field_path: str, message: str) -> InvalidInput:
    """InvalidInput naming the input and its JSON path, as the processes API names the
    errors it finds by schema: ``field`` ``domain.lat``, ``input`` ``domain``, ``path``
    ``$.domain.lat``."""
    name = re.split(r"[.\[]", field_path, maxsplit=1)[0]
    return InvalidInput(
        f"{field_path}: {message}",
        errors=[
            {"field": field_path, "input": name, "path": f"$.{field_path}", "message": message}
        ],
    )


@dataclass(frozen=True)
class Index:
    """Positions ``first`` to ``last``, both included; a single position is ``first ==
    last`` with ``scalar`` set (the dimension is dropped, as a single value drops it)."""

    first: int | None
    last: int | None
    scalar: bool = False


DomainValue = Value | Index


@dataclass(frozen=True)
class Domain:
    items: Mapping[str, DomainValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class SourceRef:
    """A registered dataset by id, or a NetCDF file or Zarr store by absolute path."""

    dataset: str | None
    path: str | None
    field: str  # the input it came in, for messages

    def describe(self) -> str:
        return f"dataset {self.dataset!r}" if self.dataset else f"{self.path}"


@dataclass(frozen=True)
class VariableRequest:
    source: SourceRef
    variable: str
    domain: Domain
    prefix: str  # "" or "a." / "b.": where its inputs sit, for messages

    def where(self, name: str) -> str:
        return f"{self.prefix}{name}"


def _path(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def require_object(inputs: Any, where: str = "inputs") -> Mapping[str, Any]:
    if not isinstance(inputs, Mapping):
        raise invalid(where, f"must be a JSON object, not {type(inputs).__name__}")
    return inputs


def parse_source(inputs: Mapping[str, Any], prefix: str = "") -> SourceRef:
    dataset, href = inputs.get("dataset"), inputs.get("href")
    if (dataset is None) == (href is None):
        raise invalid(
            _path(prefix, "dataset"),
            "give either dataset (the id of a served dataset) or href (the path of a NetCDF "
            "file or Zarr store under the allowed roots), and not both",
        )
    if dataset is not None:
        where = _path(prefix, "dataset")
        if not isinstance(dataset, str) or not _DATASET_ID.fullmatch(dataset):
            raise invalid(
                where,
                "a dataset id is 1-128 letters, digits, '.', '_' or '-', starting with "
                "a letter or digit",
            )
        return SourceRef(dataset=dataset, path=None, field=where)
    where = _path(prefix, "href")
    if not isinstance(href, str) or not href:
        raise invalid(where, "must be a non-empty string")
    text = href.removeprefix("file://") if href.startswith("file:///") else href
    if "://" in text:
        # A remote URL would make the worker fetch whatever a user names (and reach hosts
        # only the server can): data is read from the allowed roots or a served dataset.
        raise invalid(
            where,
            "only local paths (or file:/// URLs) under the allowed roots are read; "
            "for data served here give its dataset id",
        )
    if "\x00" in text or len(text.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise invalid(where, f"a path holds no NUL byte and is at most {MAX_PATH} bytes")
    if not text.startswith("/"):
        raise invalid(where, "must be an absolute path")
    return SourceRef(dataset=None, path=text, field=where)


def parse_variable(inputs: Mapping[str, Any], prefix: str = "") -> VariableRequest:
    source = parse_source(inputs, prefix)
    where = _path(prefix, "variable")
    variable = inputs.get("variable")
    if not isinstance(variable, str) or not _NAME.fullmatch(variable):
        raise invalid(where, "the name of one variable of the dataset is required")
    domain = parse_domain(inputs.get("domain"), _path(prefix, "domain"))
    return VariableRequest(source, variable, domain, prefix)


def parse_domain(value: Any, where: str = "domain") -> Domain:
    if value is None:
        return Domain()
    if isinstance(value, str):
        try:
            selection = parse_selection(value)
        except InvalidInput as exc:
            raise invalid(where, exc.detail) from None
        return Domain(selection.items)
    if not isinstance(value, Mapping):
        raise invalid(where, "a domain is a JSON object of dimension: range, or a string")
    if len(value) > MAX_ITEMS:
        raise invalid(where, f"at most {MAX_ITEMS} dimensions")
    items: dict[str, DomainValue] = {}
    for key, spec in value.items():
        item = f"{where}.{key}"
        if not isinstance(key, str) or not _DIM.fullmatch(key):
            raise invalid(item, "is not a dimension name")
        items[key] = _domain_value(spec, item)
    return Domain(MappingProxyType(items))


def _domain_value(spec: Any, where: str) -> DomainValue:
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"index"}:
            return _index(spec["index"], where + ".index")
        if keys and keys <= {"start", "stop"}:
            return Range(
                _end(spec.get("start"), where + ".start"), _end(spec.get("stop"), where + ".stop")
            )
        raise invalid(where, 'an object is {"start", "stop"} (by value) or {"index"}')
    if isinstance(spec, list):
        if len(spec) != 2:
            raise invalid(where, "a range is [start, stop]")
        return Range(_end(spec[0], where + "[0]"), _end(spec[1], where + "[1]"))
    if isinstance(spec, bool):
        raise invalid(where, "is a number, a date, a range or an index, not true/false")
    if isinstance(spec, int | float):
        return _end(spec, where) or 0.0
    if isinstance(spec, str):
        try:
            parsed = parse_selection(f"d={spec}").items["d"]
        except InvalidInput:
            raise invalid(
                where, f"{spec!r} is not a number, a date (2001-06) or a range (2001:2003)"
            ) from None
        return parsed
    raise invalid(where, "is a number, a date, a range or an index")


def _end(value: Any, where: str) -> float | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(where, "is a number or a date, not true/false")
    if isinstance(value, int | float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise invalid(where, "must be a finite number")
        return number
    if isinstance(value, str):
        try:
            parsed = parse_selection(f"d={value}").items["d"]
        except InvalidInput:
            parsed = None
        if isinstance(parsed, float | str):
            return parsed
        raise invalid(where, f"{value!r} is not a number or a date (2001-06-15)")
    raise invalid(where, "is a number or a date")


def _index(value: Any, where: str) -> Index:
    def position(v: Any, at: str) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise invalid(at, "an index is a whole number (negative counts from the end)")
        return v

    if isinstance(value, list):
        if len(value) != 2:
            raise invalid(where, "an index range is [first, last], both included")
        return Index(position(value[0], where + "[0]"), position(value[1], where + "[1]"))
    single = position(value, where)
    return Index(single, single, scalar=True)


def parse_format(inputs: Mapping[str, Any]) -> Format:
    value = inputs.get("format", "netcdf")
    if value == "netcdf":
        return "netcdf"
    if value == "zarr":
        return "zarr"
    raise invalid("format", f"is netcdf or zarr, not {value!r}")


def parse_choice(
    inputs: Mapping[str, Any], name: str, choices: Mapping[str, str], default: str
) -> str:
    """One of ``choices`` (a word users may write -> the word it means)."""
    value = inputs.get(name, default)
    if not isinstance(value, str) or value not in choices:
        raise invalid(name, f"is one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def parse_axes(inputs: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The axes to reduce over; None for all of them."""
    value = inputs.get("axes")
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise invalid("axes", "a list of dimension names or axis words (lat, lon, level, time)")
    axes: list[str] = []
    for i, axis in enumerate(value):
        if not isinstance(axis, str) or not _DIM.fullmatch(axis):
            raise invalid(f"axes[{i}]", "is not a dimension name")
        if axis in axes:
            raise invalid(f"axes[{i}]", f"{axis} is given twice")
        axes.append(axis)
    return tuple(axes)


def parse_flag(inputs: Mapping[str, Any], name: str) -> bool:
    value = inputs.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name, "is true or false")
    return value


def parse_freq(inputs: Mapping[str, Any]) -> str:
    value = inputs.get("freq")
    if not isinstance(value, str) or not _FREQ.fullmatch(value):
        raise invalid(
            "freq",
            "a time frequency such as 1MS (months), QS-DEC (seasons DJF, MAM, ...), "
            "YS (years), 5D or 6h",
        )
    return value
