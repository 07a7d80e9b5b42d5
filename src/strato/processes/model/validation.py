"""Inputs of an execute request checked against the process's description: each error
names the input and the JSON path of the offending value, so a client knows what to fix.

A value may come inline, as a qualified value (``{"value": ..., "mediaType": ...}``), or,
for an input that repeats (maxOccurs > 1), as an array of those. What the task gets is
the plain values, a repeating input always as a list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from strato.errors import InvalidInput
from strato.processes.model.description import InputDescription, ProcessDescription

_QUALIFIED = frozenset({"value", "mediaType", "encoding", "schema"})
# Errors listed in one answer: enough to fix several at once, not a wall of text.
_MOST_ERRORS = 20


def _json_path(base: str, parts: list[str | int]) -> str:
    path = base
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _unqualified(value: Any) -> Any:
    if isinstance(value, dict) and "value" in value and set(value) <= _QUALIFIED:
        return value["value"]
    return value


class _Errors:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def add(self, name: str, path: str, message: str) -> None:
        if len(self.found) < _MOST_ERRORS:
            # jsonschema's messages quote the value, which may be a whole array.
            short = message if len(message) <= 300 else message[:297] + "..."
            self.found.append(
                {"field": path.removeprefix("$."), "input": name, "path": path, "message": short}
            )


def _check_value(name: str, given: InputDescription, value: Any, path: str, errors: _Errors) -> Any:
    value = _unqualified(value)
    error = best_match(Draft202012Validator(dict(given.schema)).iter_errors(value))
    if error is not None:
        errors.add(name, _json_path(path, list(error.absolute_path)), error.message)
    return value


def validate_inputs(process: ProcessDescription, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The task's inputs from an execute request's, or InvalidInput naming each bad one."""
    errors = _Errors()
    values: dict[str, Any] = {}
    for name in inputs:
        if name not in process.inputs:
            known = ", ".join(process.inputs) or "none"
            errors.add(
                name,
                f"$.inputs.{name}",
                f"process {process.id!r} has no input {name!r} (its inputs: {known})",
            )
    for name, given in process.inputs.items():
        path = f"$.inputs.{name}"
        if name not in inputs:
            if given.required:
                errors.add(name, path, f"input {name!r} is required")
            continue
        value = inputs[name]
        if given.repeats:
            items = value if isinstance(value, list) else [value]
            most = given.max_occurs
            if len(items) < given.min_occurs or (most != "unbounded" and len(items) > most):
                errors.add(
                    name,
                    path,
                    f"input {name!r} takes {given.min_occurs} to {most} values, not {len(items)}",
                )
                continue
            values[name] = [
                _check_value(name, given, item, f"{path}[{i}]", errors)
                for i, item in enumerate(items)
            ]
        else:
            values[name] = _check_value(name, given, value, path, errors)
    if errors.found:
        first = errors.found[0]
        more = f" (and {len(errors.found) - 1} more)" if len(errors.found) > 1 else ""
        raise InvalidInput(
            f"input {first['input']!r} at {first['path']}: {first['message']}{more}",
            errors=errors.found,
        )
    return values
