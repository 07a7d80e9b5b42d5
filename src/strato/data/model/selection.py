"""The selection syntax of plot URLs: ``time=2001-06,lat=-30:30,lon=0:90``.

Parsing knows nothing of the dataset; applying checks every item against the coordinates
of what it selects from, and says what would have worked when it does not fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import cftime
import numpy as np
import xarray as xr

from strato.errors import InvalidInput

MAX_LENGTH = 500
MAX_ITEMS = 16

SELECTION_HELP = (
    "A selection is a comma-separated list of dim=value items, or 'all' (also '-' or empty) "
    "for no selection. A value is a number (lat=45.5, the nearest point), an ISO date or a "
    "prefix of one (time=2001, time=2001-06, time=2001-06-15, time=2001-06-15T12:00, the "
    "whole period), or an inclusive range a:b of numbers or dates where either side may be "
    "empty (lat=-30:30, lon=:90, time=1990:2000-06). "
    "Example: time=2001-06,lat=-30:30,lon=0:90."
)

_DIM = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?)?)?)?"
)
# Each field's valid range, whatever the calendar: whether a day exists in its month is
# for the axis to say (30 February is a date on a 360-day model calendar).
_FIELD_RANGES = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "minute": (0, 59)}
_FIELD_RANGES["second"] = (0, 59)
_YEAR = re.compile(r"\d{4}")


@dataclass(frozen=True)
class Range:
    start: float | str | None
    stop: float | str | None


Value = float | str | Range


@dataclass(frozen=True)
class Selection:
    items: Mapping[str, Value]


NO_SELECTION = Selection(MappingProxyType({}))


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(f"{problem}. {SELECTION_HELP}")


def _scalar(text: str) -> float | str | None:
    """A number, a date (kept as text: its precision is its meaning), or None if neither."""
    # A bare year reads as a date: on a time axis "2001" means the year, and on a numeric
    # axis apply_selection reads the same text as a number.
    date = _DATE.fullmatch(text)
    if date:
        for name, (low, high) in _FIELD_RANGES.items():
            field = date.group(name)
            if field is not None and not low <= int(field) <= high:
                return None  # 2001-13, 2001-06-32, 2001-06-01T25:00
        return text
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if np.isfinite(number) else None
    return None


def _value(dim: str, text: str) -> Value:
    scalar = _scalar(text)
    if scalar is not None:
        return scalar
    # Dates with a time of day hold colons too, so try every colon as the range separator
    # and keep the one split where both sides are valid.
    ranges = []
    for i, char in enumerate(text):
        if char != ":":
            continue
        left, right = text[:i], text[i + 1 :]
        start = _scalar(left) if left else None
        stop = _scalar(right) if right else None
        if (start is not None or not left) and (stop is not None or not right):
            ranges.append(Range(start, stop))
    if len(ranges) == 1:
        return ranges[0]
    if ranges:
        raise _invalid(f"the range in {dim}={text} is ambiguous")
    raise _invalid(f"{dim}={text} is not a number, a date or a range")


def parse_selection(text: str) -> Selection:
    """Parse a selection; raises InvalidInput naming the valid forms."""
    text = text.strip()
    if text in ("", "all", "-"):
        return NO_SELECTION
    if len(text) > MAX_LENGTH:
        raise _invalid(f"the selection is {len(text)} characters long; the limit is {MAX_LENGTH}")
    parts = text.split(",")
    if len(parts) > MAX_ITEMS:
        raise _invalid(f"the selection has {len(parts)} items; the limit is {MAX_ITEMS}")
    items: dict[str, Value] = {}
    for part in parts:
        dim, eq, value = (s.strip() for s in part.partition("="))
        if not eq:
            raise _invalid(f"'{part}' is not of the form dim=value")
        if not _DIM.fullmatch(dim):
            raise _invalid(f"'{dim}' in '{part}' is not a dimension name")
        if not value:
            raise _invalid(f"{dim}= has no value")
        if dim in items:
            raise _invalid(f"{dim} is given twice")
        items[dim] = _value(dim, value)
    return Selection(MappingProxyType(items))


def describe(sel: Selection) -> str:
    """The selection as it would be written in a URL, for titles and messages."""
    return ",".join(f"{dim}={_text(value)}" for dim, value in sel.items.items())


def _text(value: Value) -> str:
    if isinstance(value, Range):
        return f"{_text(value.start) if value.start is not None else ''}:" + (
            _text(value.stop) if value.stop is not None else ""
        )
    if isinstance(value, float):
        return f"{value:g}"
    return value


# --- applying -------------------------------------------------------------------------

T = TypeVar("T", xr.DataArray, xr.Dataset)


def apply_selection(obj: T, sel: Selection) -> T:
    """Select from ``obj``; raises InvalidInput when an item does not fit its coordinates."""
    dims = list(obj.dims)
    for dim, value in sel.items.items():
        if dim not in dims:
            raise InvalidInput(
                f"there is no dimension {dim}; the dimensions are {', '.join(map(str, dims))}"
            )
        coord = obj[dim] if dim in obj.coords else None
        values = np.asarray(coord.values) if coord is not None else np.arange(obj.sizes[dim])
        indexer = _indexer(dim, value, values)
        obj = obj.isel({dim: indexer})
    return obj


def _indexer(dim: str, value: Value, values: np.ndarray[Any, Any]) -> int | slice | list[int]:
    if np.issubdtype(values.dtype, np.datetime64):
        return _time_indexer(dim, value, values)
    if _holds_cftime(values):
        return _cftime_indexer(dim, value, values)
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidInput(
            f"{dim} holds {values.dtype} values, which a selection cannot address; "
            "only numeric and datetime coordinates can be selected"
        )
    if not isinstance(value, Range):
        return _nearest(dim, _number(dim, value), values)
    lo, hi = _number(dim, value.start), _number(dim, value.stop)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo  # a range is a set of values, whichever way the axis runs
    mask = np.ones(values.shape, dtype=bool)
    if lo is not None:
        mask &= values >= lo
    if hi is not None:
        mask &= values <= hi
    return _matches(dim, value, values, mask, squeeze=False)


def _number(dim: str, value: float | str | None) -> float | None:
    if value is None or isinstance(value, float):
        return value
    if _NUMBER.fullmatch(value):
        return float(value)
    raise _invalid(f"{dim} is numeric, so {dim}={value} does not fit; give a number like {dim}=30")


def _nearest(dim: str, number: float | None, values: np.ndarray[Any, Any]) -> int:
    assert number is not None
    finite = np.isfinite(values)
    if not finite.any():
        raise InvalidInput(f"{dim}={number:g} matches nothing: {dim} has no valid values")
    lo, hi = float(values[finite].min()), float(values[finite].max())
    # Nearest, but not from anywhere: a point beyond the axis by more than one grid step
    # is a mistake (lat=500), not a request for the edge.
    spacing = float(np.nanmax(np.abs(np.diff(values)))) if values.size > 1 else 0.0
    if not lo - spacing <= number <= hi + spacing:
        raise InvalidInput(f"{dim}={number:g} matches nothing: {dim} runs from {lo:g} to {hi:g}")
    distance = np.where(finite, np.abs(values - number), np.inf)
    return int(np.argmin(distance))


def _matches(
    dim: str,
    value: Value,
    values: np.ndarray[Any, Any],
    mask: np.ndarray[Any, Any],
    *,
    squeeze: bool,
) -> int | slice | list[int]:
    index = np.flatnonzero(mask)
    if index.size == 0:
        if values.dtype.kind == "O":
            valid = values[[v is not None for v in values]]
        elif values.dtype.kind == "M":
            valid = values[~np.isnat(values)]
        else:
            valid = values[~np.isnan(values)]
        extent = f"{_show(valid.min())} to {_show(valid.max())}" if valid.size else "nothing"
        raise InvalidInput(f"{dim}={_text(value)} matches nothing: {dim} runs from {extent}")
    if squeeze and index.size == 1:
        return int(index[0])  # one step left: drop the dimension, as a scalar would
    # A contiguous block stays a slice, which keeps lazy reads to one hyperslab.
    if index[-1] - index[0] + 1 == index.size:
        return slice(int(index[0]), int(index[-1]) + 1)
    return [int(i) for i in index]


def _date_text(dim: str, value: float | str) -> str:
    if isinstance(value, float):
        if not (value.is_integer() and 1 <= value <= 9999):
            raise _invalid(
                f"{dim} holds dates, so {dim}={value:g} does not fit; "
                f"give a date like {dim}=2001-06"
            )
        return f"{int(value):04d}"
    return value


def _period(dim: str, value: float | str) -> np.datetime64:
    """The date (or bare year) as a datetime64 whose unit is its precision: 2001-06 is [M]."""
    text = _date_text(dim, value)
    try:
        return np.datetime64(text)
    except ValueError:
        raise InvalidInput(
            f"{dim}={text} is not a date of {dim}'s calendar (standard, proleptic Gregorian)"
        ) from None


def _time_indexer(dim: str, value: Value, values: np.ndarray[Any, Any]) -> int | slice | list[int]:
    # Microseconds hold every date a user can write without overflow (nanoseconds end in
    # 2262), and flooring the coordinate to them keeps each comparison with such a date exact.
    values = values.astype("datetime64[us]")
    if isinstance(value, Range):
        first = None if value.start is None else _period(dim, value.start)
        last = None if value.stop is None else _period(dim, value.stop)
        if first is not None and last is not None and first > last:
            first, last = last, first
        mask = np.ones(values.shape, dtype=bool)
        if first is not None:
            mask &= values >= first
        if last is not None:
            mask &= values < last + 1  # up to the end of the period the stop names
        return _matches(dim, value, values, mask, squeeze=False)
    period = _period(dim, value)
    mask = (values >= period) & (values < period + 1)
    return _matches(dim, value, values, mask, squeeze=True)


def _holds_cftime(values: np.ndarray[Any, Any]) -> bool:
    return values.dtype == object and values.size > 0 and isinstance(values[0], cftime.datetime)


def _cftime_period(dim: str, value: float | str, calendar: str) -> tuple[Any, Any]:
    """The first instant of the period a date names on a model calendar, and the first
    instant after it: 2001-06 is [2001-06-01, 2001-07-01) in the axis's own calendar."""
    text = _date_text(dim, value)
    match = _DATE.fullmatch(text)
    if match is None:
        raise _invalid(f"{dim} holds dates, so {dim}={text} does not fit")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None and k != "fraction"}
    fraction = match.group("fraction")
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        start = cftime.datetime(
            parts["year"],
            parts.get("month", 1),
            parts.get("day", 1),
            parts.get("hour", 0),
            parts.get("minute", 0),
            parts.get("second", 0),
            micro,
            calendar=calendar,
        )
        if "month" not in parts:
            end = cftime.datetime(parts["year"] + 1, 1, 1, calendar=calendar)
        elif "day" not in parts:
            year, month = divmod(parts["month"], 12)
            end = cftime.datetime(parts["year"] + year, month + 1, 1, calendar=calendar)
        else:
            if fraction:
                step = (
                    timedelta(milliseconds=1) if len(fraction) <= 3 else timedelta(microseconds=1)
                )
            elif "second" in parts:
                step = timedelta(seconds=1)
            elif "minute" in parts:
                step = timedelta(minutes=1)
            else:
                step = timedelta(days=1)
            end = start + step
    except ValueError:
        raise InvalidInput(f"{dim}={text} is not a date of {dim}'s {calendar} calendar") from None
    return start, end


def _cftime_indexer(
    dim: str, value: Value, values: np.ndarray[Any, Any]
) -> int | slice | list[int]:
    # Compared in the axis's own calendar: 2001-02-30 exists in a 360-day year, and a
    # month of a noleap year has the days that calendar gives it.
    calendar = values[0].calendar
    if isinstance(value, Range):
        first = None if value.start is None else _cftime_period(dim, value.start, calendar)
        last = None if value.stop is None else _cftime_period(dim, value.stop, calendar)
        if first is not None and last is not None and first[0] > last[0]:
            first, last = last, first
        mask = np.ones(values.shape, dtype=bool)
        if first is not None:
            mask &= np.asarray(values >= first[0], dtype=bool)
        if last is not None:
            mask &= np.asarray(values < last[1], dtype=bool)
        return _matches(dim, value, values, mask, squeeze=False)
    start, end = _cftime_period(dim, value, calendar)
    mask = np.asarray((values >= start) & (values < end), dtype=bool)
    return _matches(dim, value, values, mask, squeeze=True)


def _show(value: Any) -> str:
    if isinstance(value, cftime.datetime):
        text = str(value.strftime("%Y-%m-%d %H:%M"))
        return text.removesuffix(" 00:00")
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="m")).removesuffix("T00:00")
    return f"{float(value):g}"
