"""RFC 3339 date-times, read once per distinct text.

An item's times repeat from item to item (a CMIP6 dataset's start and end are shared by
its variables and members), and each is read twice on the way in: when the event is
checked, and when the item's columns are derived. Keeping what was read makes the
later reads a lookup instead of two regular expressions and a parse.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
# Longer texts (nanoseconds and beyond, or not a time at all) are read but not kept, so
# what users send cannot fill the cache with large keys.
_KEPT_LENGTH = 40
_KEPT = 4096


def _read(value: str) -> datetime | None:
    if not _RFC3339.match(value):
        return None
    text = value.upper()
    if "." in text:
        # fromisoformat takes at most six fractional digits; RFC 3339 allows any number.
        text = _LONG_FRACTION.sub(r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _read_utc(value: str) -> datetime | None:
    parsed = _read(value)
    if parsed is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved past the calendar's end
        return None


_read_kept = functools.lru_cache(maxsize=_KEPT)(_read)
_read_utc_kept = functools.lru_cache(maxsize=_KEPT)(_read_utc)


def parse(value: str) -> datetime | None:
    """``value`` as an aware datetime at its own offset; None unless it is an RFC 3339
    date-time with a time zone that Python can hold."""
    return _read_kept(value) if len(value) <= _KEPT_LENGTH else _read(value)


def parse_utc(value: str) -> datetime | None:
    """:func:`parse`, in UTC."""
    return _read_utc_kept(value) if len(value) <= _KEPT_LENGTH else _read_utc(value)
