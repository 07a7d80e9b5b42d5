"""The built-in processes as :class:`~strato.processes.registry.Endpoint` objects, one per
entry point of the group ``strato.processes`` (pyproject.toml), so they are found the way
a third party's processes are and a node lists them beside hello-world.

Their descriptions are the JSON of :mod:`~strato.processes.builtin.descriptions`; each is
turned into a :class:`ProcessDescription` once, on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from strato.processes.builtin.descriptions import BUILTIN, description
from strato.processes.model.description import (
    InputDescription,
    OutputDescription,
    ProcessDescription,
)


def _input(spec: Mapping[str, Any]) -> InputDescription:
    return InputDescription(
        title=str(spec.get("title", "")),
        schema=spec["schema"],
        description=str(spec.get("description", "")),
        min_occurs=int(spec.get("minOccurs", 1)),
        max_occurs=spec.get("maxOccurs", 1),
        keywords=tuple(spec.get("keywords", ())),
    )


def _output(spec: Mapping[str, Any]) -> OutputDescription:
    return OutputDescription(
        title=str(spec.get("title", "")),
        schema=spec["schema"],
        description=str(spec.get("description", "")),
    )


def from_json(doc: Mapping[str, Any]) -> ProcessDescription:
    """A process description (OGC API - Processes JSON) as the model's."""
    return ProcessDescription(
        id=doc["id"],
        title=doc.get("title", doc["id"]),
        version=doc.get("version", "1.0.0"),
        description=doc.get("description", ""),
        keywords=tuple(doc.get("keywords", ())),
        inputs={name: _input(spec) for name, spec in doc.get("inputs", {}).items()},
        outputs={name: _output(spec) for name, spec in doc["outputs"].items()},
        job_control=tuple(doc.get("jobControlOptions", ("sync-execute", "async-execute"))),
        output_transmission=tuple(doc.get("outputTransmission", ("value", "reference"))),
    )


class Builtin:
    """One built-in process: its description and its task in builtin.tasks."""

    def __init__(self, process_id: str) -> None:
        self.process_id = process_id
        self.task = BUILTIN[process_id][0]

    @cached_property
    def _description(self) -> ProcessDescription:
        return from_json(description(self.process_id))

    def describe(self) -> ProcessDescription:
        return self._description


subset = Builtin("subset")
reduce = Builtin("reduce")
climatology = Builtin("climatology")
anomaly = Builtin("anomaly")
resample = Builtin("resample")
difference = Builtin("difference")
