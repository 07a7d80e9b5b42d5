"""Applying patches to items: JSON merge patch (RFC 7396) and JSON Patch (RFC 6902).

Kept apart from the event models (:mod:`strato.catalog.model.events`), which only check a
patch's shape: applying one is what a node does to its stored item.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from strato.errors import InvalidInput

# A JSON Pointer (RFC 6901): what events check a patch's paths against, and what applying
# one splits into tokens.
POINTER = re.compile(r"^(/([^~/]|~[01])*)*$")


class _PatchError(ValueError):
    pass


def _tokens(pointer: str) -> list[str]:
    if not isinstance(pointer, str) or not POINTER.match(pointer):
        raise _PatchError(f"{pointer!r} is not a JSON Pointer")
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


def _index(part: str, size: int, pointer: str, *, end_ok: bool) -> int:
    if part == "-" and end_ok:
        return size
    if not _INDEX.match(part):
        raise _PatchError(f"{pointer}: {part!r} is not an array index")
    index = int(part)
    if index > size or (index == size and not end_ok):
        raise _PatchError(f"{pointer}: index {index} is out of range (size {size})")
    return index


def _child(container: Any, token: str, pointer: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _PatchError(f"{pointer} does not exist")
        return container[token]
    if isinstance(container, list):
        return container[_index(token, len(container), pointer, end_ok=False)]
    raise _PatchError(f"{pointer} does not exist")


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    for token in tokens:
        doc = _child(doc, token, pointer)
    return doc


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), pointer, end_ok=True), value)
    else:
        raise _PatchError(f"{pointer}: the parent is not an object or array")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    tokens = _tokens(pointer)
    if not tokens:
        raise _PatchError("the whole document cannot be removed")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchError(f"{pointer} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), pointer, end_ok=False))
    raise _PatchError(f"{pointer} does not exist")


def _replace(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent), pointer, end_ok=False)] = value
    else:
        raise _PatchError(f"{pointer} does not exist")
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    # JSON has no bool/number overlap, and 1 equals 1.0; Python's == gets both wrong or right
    # by accident, so the comparison is spelled out.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _apply_operation(doc: Any, op: Mapping[str, Any]) -> Any:
    name = op.get("op")
    path = op.get("path")
    if not isinstance(path, str):
        raise _PatchError("'path' is missing or not a string")
    if name in ("add", "replace", "test") and "value" not in op:
        raise _PatchError("'value' is missing")
    if name == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if name == "remove":
        return _remove(doc, path)[0]
    if name == "replace":
        return _replace(doc, path, copy.deepcopy(op["value"]))
    if name in ("move", "copy"):
        source = op.get("from")
        if not isinstance(source, str):
            raise _PatchError("'from' is missing or not a string")
        value = _resolve(doc, _tokens(source), source)
        if name == "copy":
            return _add(doc, path, copy.deepcopy(value))
        if path == source:
            return doc
        if path.startswith(source + "/"):
            raise _PatchError(f"cannot move {source} into its own child {path}")
        doc, value = _remove(doc, source)
        return _add(doc, path, value)
    if name == "test":
        found = _resolve(doc, _tokens(path), path)
        if not _json_equal(found, op["value"]):
            raise _PatchError(f"{path} is {json.dumps(found)[:200]}, not the tested value")
        return doc
    raise _PatchError(f"unknown operation {name!r}")


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def apply_patch(
    item: Mapping[str, Any], patch: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``item`` changed by a merge patch (RFC 7396, a mapping) or JSON Patch (RFC 6902, a list).

    The input is not modified. JSON Patch is atomic: if one operation fails, InvalidInput
    names its index and nothing is applied.
    """
    doc: Any = copy.deepcopy(dict(item))
    if isinstance(patch, Mapping):
        return dict(_merge(doc, dict(patch)))
    if isinstance(patch, str | bytes) or not isinstance(patch, Sequence):
        raise InvalidInput("a patch is a JSON merge patch (object) or a list of operations")
    for index, op in enumerate(patch):
        if not isinstance(op, Mapping):
            raise InvalidInput(
                f"patch[{index}]: an operation is an object",
                errors=[{"field": f"patch[{index}]", "message": "not an object"}],
            )
        try:
            doc = _apply_operation(doc, op)
        except _PatchError as exc:
            raise InvalidInput(
                f"patch[{index}] ({op.get('op')}): {exc}",
                errors=[{"field": f"patch[{index}]", "message": str(exc)}],
            ) from None
    if not isinstance(doc, dict):
        raise InvalidInput("the patched document is no longer an object")
    return doc
