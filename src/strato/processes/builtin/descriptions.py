"""OGC API - Processes descriptions of the built-in processes, as plain JSON dicts, and
the task each runs (``"module:function"`` for the job engine).

The processes capability registers them: ``for pid, (task, description) in
BUILTIN.items()``. Inputs and outputs are JSON Schema with ``minOccurs``/``maxOccurs``
(OGC API - Processes Part 1, process description); the schemas say what
:mod:`strato.processes.builtin.domain` checks, which stays the judge (it names the input
and JSON path of anything wrong).
"""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

from strato.data.analysis.diagnostics import ACTIONS
from strato.processes.builtin.domain import FORMATS
from strato.processes.builtin.reduce import METHODS
from strato.processes.builtin.tasks import GROUPINGS, RESAMPLE_METHODS

_TASKS = "strato.processes.builtin.tasks"
VERSION = "1.0.0"

_BOUND = {"type": ["number", "string", "null"], "description": "A number or an ISO date."}
_DOMAIN_VALUE: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "description": "The nearest point."},
        {"type": "string", "description": "A date or prefix (2001-06: the month), or a:b."},
        {"type": "array", "items": _BOUND, "minItems": 2, "maxItems": 2},
        {
            "type": "object",
            "properties": {"start": _BOUND, "stop": _BOUND},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "index": {
                    "oneOf": [
                        {"type": "integer"},
                        {
                            "type": "array",
                            "items": {"type": ["integer", "null"]},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    ]
                }
            },
            "required": ["index"],
            "additionalProperties": False,
        },
    ]
}
_DOMAIN: dict[str, Any] = {
    "title": "Domain",
    "description": "Ranges by value, date or index of lat, lon, level, time or any "
    'dimension: {"lat": [-30, 30], "time": "2001:2003", "level": {"index": 0}}, or the '
    'plot selection syntax "time=2001:2003,lat=-30:30". Ranges include both ends.',
    "schema": {
        "oneOf": [
            {"type": "object", "additionalProperties": _DOMAIN_VALUE, "maxProperties": 16},
            {"type": "string", "maxLength": 500},
        ]
    },
    "minOccurs": 0,
    "maxOccurs": 1,
}
_DATASET = {
    "title": "Dataset",
    "description": "The id of a dataset served by this node (give this or href).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
    "minOccurs": 0,
    "maxOccurs": 1,
}
_HREF = {
    "title": "Data path",
    "description": "Absolute path (or file:/// URL) of a NetCDF file or Zarr store under "
    "the allowed roots (give this or dataset).",
    "schema": {"type": "string", "maxLength": 4096},
    "minOccurs": 0,
    "maxOccurs": 1,
}
_VARIABLE = {
    "title": "Variable",
    "schema": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"},
    "minOccurs": 1,
    "maxOccurs": 1,
}
_FORMAT = {
    "title": "Result format",
    "schema": {"type": "string", "enum": list(FORMATS), "default": "netcdf"},
    "minOccurs": 0,
    "maxOccurs": 1,
}
_RESULT = {
    "result": {
        "title": "Result",
        "description": "The result file, a reference relative to the job's results.",
        "schema": {
            "oneOf": [{"type": "string", "contentMediaType": media} for media in FORMATS.values()]
        },
    }
}


def _choice(title: str, values: list[str], default: str) -> dict[str, Any]:
    schema = {"type": "string", "enum": values, "default": default}
    return {"title": title, "schema": schema, "minOccurs": 0, "maxOccurs": 1}


def _variable_inputs() -> dict[str, Any]:
    return {
        "dataset": copy.deepcopy(_DATASET),
        "href": copy.deepcopy(_HREF),
        "variable": copy.deepcopy(_VARIABLE),
        "domain": copy.deepcopy(_DOMAIN),
    }


def _describe(pid: str, title: str, description: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": pid,
        "title": title,
        "description": description,
        "version": VERSION,
        "keywords": ["strato", "built-in", "analysis"],
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "outputTransmission": ["value", "reference"],
        "inputs": {**inputs, "format": copy.deepcopy(_FORMAT)},
        "outputs": copy.deepcopy(_RESULT),
    }


def _pair() -> dict[str, Any]:
    properties = {
        name: spec["schema"] for name, spec in _variable_inputs().items() if name != "domain"
    }
    properties["domain"] = _DOMAIN["schema"]
    operand = {
        "type": "object",
        "properties": properties,
        "required": ["variable"],
        "additionalProperties": False,
    }
    return {
        "a": {"title": "Minuend", "schema": operand, "minOccurs": 1, "maxOccurs": 1},
        "b": {"title": "Subtrahend", "schema": operand, "minOccurs": 1, "maxOccurs": 1},
    }


_AXES = {
    "title": "Axes",
    "description": "Dimensions or axis words (lat, lon, level, time) to reduce over; default all.",
    "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
    "minOccurs": 0,
    "maxOccurs": 1,
}
_WEIGHTED = {
    "title": "Area-weighted",
    "description": "Weight by cos(latitude); the latitude's dimensions must be reduced.",
    "schema": {"type": "boolean", "default": False},
    "minOccurs": 0,
    "maxOccurs": 1,
}
_BY = _choice("Grouping", list(GROUPINGS), "time.month")
_FREQ = {
    "title": "Frequency",
    "description": "Time frequency: 1MS (months), QS-DEC (seasons), YS (years), 5D, 6h.",
    "schema": {"type": "string", "pattern": "^[0-9]*(MS|ME|QS|QE|YS|YE|D|h|min|W)(-[A-Z]{3})?$"},
    "minOccurs": 1,
    "maxOccurs": 1,
}

BUILTIN: MappingProxyType[str, tuple[str, dict[str, Any]]] = MappingProxyType(
    {
        "subset": (
            f"{_TASKS}:subset",
            _describe("subset", "Subset", "A variable within a domain.", _variable_inputs()),
        ),
        "reduce": (
            f"{_TASKS}:reduce",
            _describe(
                "reduce",
                "Reduce",
                "Mean (ave), min, max, sum or standard deviation of a variable over any of "
                "its axes, optionally area-weighted by cos(latitude).",
                {
                    **_variable_inputs(),
                    "axes": copy.deepcopy(_AXES),
                    "method": _choice("Method", list(METHODS), "mean"),
                    "weighted": copy.deepcopy(_WEIGHTED),
                },
            ),
        ),
        "climatology": (
            f"{_TASKS}:climatology",
            _describe(
                "climatology",
                "Climatology",
                "A variable grouped by month, season, year, ... of its time and each group "
                "reduced.",
                {
                    **_variable_inputs(),
                    "by": copy.deepcopy(_BY),
                    "method": _choice("Method", list(ACTIONS), "mean"),
                },
            ),
        ),
        "anomaly": (
            f"{_TASKS}:anomaly",
            _describe(
                "anomaly",
                "Anomaly",
                "A variable minus its climatology (the mean of each month, season, ...).",
                {**_variable_inputs(), "by": copy.deepcopy(_BY)},
            ),
        ),
        "resample": (
            f"{_TASKS}:resample",
            _describe(
                "resample",
                "Resample",
                "Time aggregation of a variable to a coarser frequency; model calendars "
                "(noleap, 360_day) included.",
                {
                    **_variable_inputs(),
                    "freq": copy.deepcopy(_FREQ),
                    "method": _choice("Method", list(RESAMPLE_METHODS), "mean"),
                },
            ),
        ),
        "difference": (
            f"{_TASKS}:difference",
            _describe(
                "difference",
                "Difference",
                "a minus b, two variables on the same grid.",
                _pair(),
            ),
        ),
    }
)


def description(pid: str) -> dict[str, Any]:
    """A copy of the description of built-in process ``pid`` (KeyError if none)."""
    return copy.deepcopy(BUILTIN[pid][1])
