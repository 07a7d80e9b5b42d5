"""A run and its tasks as records: their states and what the store keeps of them.

A run keeps the workflow it was rendered to (each task's spec and parents), so that a
restarted server runs exactly what was submitted without rendering again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from strato.pipelines.model.workflow import TaskSpec, Workflow


class RunState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelling = "cancelling"
    cancelled = "cancelled"


# A run in one of these has its runner (after a restart: is given one again).
ACTIVE = frozenset({RunState.queued, RunState.running, RunState.cancelling})
ENDED = frozenset({RunState.succeeded, RunState.failed, RunState.cancelled})


class TaskState(StrEnum):
    pending = "pending"
    running = "running"
    complete = "complete"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


@dataclass(frozen=True)
class PostSteps:
    """What happens once a run's tasks are done: its project directory archived (into
    ``archive_to``, on success) and its submitter told by e-mail (``notify``)."""

    archive_to: str | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    id: str
    pipeline: str  # name@version
    config: dict[str, Any]
    submitter: str
    project: str
    state: RunState
    created: datetime
    updated: datetime
    started: datetime | None = None
    finished: datetime | None = None
    reason: str = ""
    post: PostSteps = PostSteps()
    # Post-run steps done in this run's current round: {"archive": path, "notify": ...}.
    steps: Mapping[str, str] = field(default_factory=dict)
    # Directories put first on the tasks' PATH (the pipeline's bin/).
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskRecord:
    run_id: str
    name: str
    position: int  # render order
    state: TaskState
    spec: TaskSpec
    parents: frozenset[str]
    attempts: int = 0
    exit_code: int | None = None
    reason: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    log: str | None = None
    backend_id: str | None = None

    @property
    def identity(self) -> str:
        return self.spec.identity


def spec_to_json(spec: TaskSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["reset"] = spec.reset if isinstance(spec.reset, str) else list(spec.reset)
    # Directives are YAML values: a date or another non-JSON scalar is kept as text.
    data["directives"] = json.loads(json.dumps(dict(spec.directives), default=str))
    return data


def spec_from_json(data: Mapping[str, Any]) -> TaskSpec:
    values = dict(data)
    reset = values.get("reset", ())
    values["reset"] = "parents" if reset == "parents" else tuple(reset)
    return TaskSpec(**values)


def workflow_of(tasks: list[TaskRecord]) -> Workflow:
    ordered = sorted(tasks, key=lambda t: t.position)
    return Workflow(
        tasks={t.name: t.spec for t in ordered},
        parents={t.name: t.parents for t in ordered},
    )
