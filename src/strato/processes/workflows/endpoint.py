"""The ``workflow`` process: a DAG of process calls in the explicit form
(:mod:`strato.processes.workflows.plan`), run by the server's coordinator, not by a worker.

Its task runs only when the server stopped before the coordinator took the workflow up
(after a restart): it fails the job with the reason. A workflow that was running when the
server stopped is failed by the job engine's own recovery (a tracked job has no retries).
"""

from __future__ import annotations

from typing import Any

from strato.job_engine import TaskContext
from strato.processes.model.description import (
    InputDescription,
    OutputDescription,
    ProcessDescription,
)
from strato.processes.workflows.plan import MAX_STEPS, WORKFLOW

TASK = "strato.processes.workflows.endpoint:orphaned"

_CALL = {
    "type": "object",
    "properties": {
        "process": {"type": "string", "maxLength": 2048},
        "inputs": {"type": "object"},
        "outputs": {"type": "object"},
    },
    "required": ["process"],
    "additionalProperties": False,
}
_REF = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {"step": {"type": "string"}, "output": {"type": "string"}},
            "required": ["step"],
            "additionalProperties": False,
        },
    ]
}

DESCRIPTION = ProcessDescription(
    id=WORKFLOW,
    title="Workflow",
    version="1.0.0",
    description="Runs named steps, each a process call whose inputs may be other steps' "
    'outputs ({"step": <name>, "output": <output>}) or nested process calls (OGC API - '
    "Processes Part 3), and gives back the outputs it names. Each step is a job of its "
    "own; this job's status lists them.",
    keywords=("workflow", "chaining", "dag"),
    inputs={
        "steps": InputDescription(
            title="Steps",
            description='Step name -> {"process": <id or URL>, "inputs": {...}}.',
            schema={
                "type": "object",
                "additionalProperties": _CALL,
                "minProperties": 1,
                "maxProperties": MAX_STEPS,
            },
        ),
        "outputs": InputDescription(
            title="Outputs",
            description='Output name -> {"step": <name>, "output": <output of that step>}.',
            schema={"type": "object", "additionalProperties": _REF, "minProperties": 1},
        ),
    },
    outputs={
        "outputs": OutputDescription(
            title="The outputs the request names",
            description="One result per name in the request's outputs, each the step "
            "output it names (result files copied into this job's results).",
            schema={},
        )
    },
)


class WorkflowEndpoint:
    task = TASK

    def describe(self) -> ProcessDescription:
        return DESCRIPTION


endpoint = WorkflowEndpoint()


def orphaned(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    raise RuntimeError("the server stopped before this workflow's steps were run; submit it again")
