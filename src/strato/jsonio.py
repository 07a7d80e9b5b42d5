"""JSON in and out where it is hot: events off the bus, items in and out of the database.

orjson parses and writes several times faster than the standard library, which shows in
ingest (every event is parsed, every item written) and in search (every item read back).
It refuses a few things the standard library takes -- integers beyond 64 bits, keys that
are not strings -- and for those the standard library does the work, so what is accepted
and what each error says stay exactly as they were.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parsed JSON; NaN and Infinity are refused (ValueError), as is text that is not
    UTF-8 (UnicodeDecodeError). Errors are the standard library's, messages included."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    return json.loads(text, parse_constant=_no_constants)


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dump_bytes(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON. NaN and Infinity, which JSON has no words for,
    are written as null."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _ENCODE(value).encode("utf-8")


def dumps(value: Any) -> str:
    """``value`` as compact JSON text."""
    return dump_bytes(value).decode("utf-8")
