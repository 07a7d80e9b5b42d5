"""A rendered workflow: the tasks a pipeline's template produced for one config, and the
edges between them. What the renderer (``render.py``) makes and the runner runs.

This module is the contract between the two: pure data and graph queries, no rendering,
no running.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

# The directives whose values change what a task produces: its identity (a resumed run
# keeps a completed task only while its identity is unchanged).
IDENTITY_DIRECTIVES = ("cmd", "stdin", "input", "output", "exec")


@dataclass(frozen=True)
class TaskSpec:
    """One task as its template declares it, after rendering."""

    name: str  # ^[A-Za-z0-9_-]*$, unique in its workflow
    cmd: str | None  # bash; None: the task completes at once
    # Resources: a task takes its whole allocation at once.
    cpus: int = 1
    mem_mb: int = 0  # 0: not limited
    walltime_s: float | None = None  # None: not limited
    retry: int = 0  # attempts after the first
    stdin: str | None = None  # text given to cmd on its standard input
    stdout: str | None = None  # paths, relative to the run's project directory
    stderr: str | None = None
    # "parents", or the names of tasks reset (run again) when this one is.
    reset: tuple[str, ...] | Literal["parents"] = ()
    # Every directive as written (after rendering), unknown ones included: metadata kept.
    directives: Mapping[str, Any] = field(default_factory=dict)
    # sha256 hex of cmd and IDENTITY_DIRECTIVES, as the renderer computes it.
    identity: str = ""


@dataclass(frozen=True)
class Workflow:
    """Tasks in the order the template rendered them, and each task's parents (the tasks
    that must complete before it runs), from after/before/input/output and their -re forms."""

    tasks: Mapping[str, TaskSpec]
    parents: Mapping[str, frozenset[str]]

    @cached_property
    def _children(self) -> dict[str, frozenset[str]]:
        # Built once: children() of every task in turn was O(n^2) on large workflows.
        children: dict[str, set[str]] = {}
        for child, ps in self.parents.items():
            for parent in ps:
                children.setdefault(parent, set()).add(child)
        return {name: frozenset(cs) for name, cs in children.items()}

    def children(self, name: str) -> frozenset[str]:
        return self._children.get(name, frozenset())

    def descendants(self, name: str) -> frozenset[str]:
        """Every task downstream of ``name`` (not itself)."""
        found: set[str] = set()
        stack = [name]
        while stack:
            for child in self.children(stack.pop()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return frozenset(found)

    def ready(self, complete: set[str] | frozenset[str]) -> Iterator[str]:
        """Tasks not in ``complete`` whose parents all are, in render order."""
        for name in self.tasks:
            if name not in complete and self.parents.get(name, frozenset()) <= complete:
                yield name

    def edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs, for drawing the graph."""
        return [(p, child) for child, ps in self.parents.items() for p in sorted(ps)]
