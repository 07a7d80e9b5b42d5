"""Process descriptions (OGC API - Processes Part 1, process-description.yaml):
what a process is called, how it may be run, and its inputs and outputs as JSON Schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from strato.errors import InvalidInput

SYNC = "sync-execute"
ASYNC = "async-execute"
DISMISS = "dismiss"
JOB_CONTROL = (SYNC, ASYNC, DISMISS)
TRANSMISSION = ("value", "reference")

# Process ids go into URL paths and entry point names: no slashes, nothing to escape.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

Unbounded = Literal["unbounded"]


def check_id(process_id: str) -> str:
    if not _ID.fullmatch(process_id):
        raise InvalidInput(
            f"process id {process_id!r} is not letters, digits and . _ : - (at most 128)"
        )
    return process_id


def _check_schema(owner: str, schema: Mapping[str, Any]) -> None:
    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        raise InvalidInput(f"{owner}: its schema is not JSON Schema: {exc.message}") from None


@dataclass(frozen=True)
class InputDescription:
    title: str
    schema: Mapping[str, Any]
    description: str = ""
    min_occurs: int = 1
    max_occurs: int | Unbounded = 1
    keywords: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.min_occurs > 0

    @property
    def repeats(self) -> bool:
        return self.max_occurs == "unbounded" or self.max_occurs > 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "description": self.description}
        if self.keywords:
            out["keywords"] = list(self.keywords)
        out |= {
            "schema": dict(self.schema),
            "minOccurs": self.min_occurs,
            "maxOccurs": self.max_occurs,
        }
        return out


@dataclass(frozen=True)
class OutputDescription:
    title: str
    schema: Mapping[str, Any]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description, "schema": dict(self.schema)}


@dataclass(frozen=True)
class ProcessDescription:
    id: str
    title: str
    version: str
    inputs: Mapping[str, InputDescription]
    outputs: Mapping[str, OutputDescription]
    description: str = ""
    keywords: tuple[str, ...] = ()
    job_control: tuple[str, ...] = JOB_CONTROL
    output_transmission: tuple[str, ...] = TRANSMISSION
    metadata: tuple[Mapping[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        check_id(self.id)
        owner = f"process {self.id!r}"
        if not self.outputs:
            raise InvalidInput(f"{owner} has no outputs")
        unknown = set(self.job_control) - set(JOB_CONTROL)
        if unknown or not ({SYNC, ASYNC} & set(self.job_control)):
            raise InvalidInput(
                f"{owner}: jobControlOptions must include sync-execute or async-execute "
                f"and only {', '.join(JOB_CONTROL)}"
            )
        if set(self.output_transmission) - set(TRANSMISSION) or not self.output_transmission:
            raise InvalidInput(f"{owner}: outputTransmission is among {', '.join(TRANSMISSION)}")
        for name, given in self.inputs.items():
            if given.min_occurs < 0 or (
                given.max_occurs != "unbounded"
                and (given.max_occurs < 1 or given.max_occurs < given.min_occurs)
            ):
                raise InvalidInput(f"{owner}, input {name!r}: minOccurs/maxOccurs do not fit")
            _check_schema(f"{owner}, input {name!r}", given.schema)
        for name, made in self.outputs.items():
            _check_schema(f"{owner}, output {name!r}", made.schema)

    def allows(self, option: str) -> bool:
        return option in self.job_control

    def summary(self) -> dict[str, Any]:
        """The processSummary: everything but the inputs and outputs."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "jobControlOptions": list(self.job_control),
            "outputTransmission": list(self.output_transmission),
        }
        if self.keywords:
            out["keywords"] = list(self.keywords)
        if self.metadata:
            out["metadata"] = [dict(m) for m in self.metadata]
        return out

    def to_json(self) -> dict[str, Any]:
        return self.summary() | {
            "inputs": {name: given.to_json() for name, given in self.inputs.items()},
            "outputs": {name: made.to_json() for name, made in self.outputs.items()},
        }
