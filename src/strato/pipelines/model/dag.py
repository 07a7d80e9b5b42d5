"""Rendered tasks into a :class:`Workflow`: each task's parents from ``after``/``before``
by name, ``input`` matched to other tasks' ``output``, and the ``-re`` forms matched with
``re.fullmatch`` against task names (``after-re``, ``before-re``) or outputs
(``input-re``).

In better than O(n^2): literal inputs are looked up in an index of outputs; a pattern is
matched only against the names (or outputs) that start with its literal prefix, found by
bisection in a sorted list, and each distinct pattern is matched once.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from typing import Any

from strato.pipelines.model.errors import WorkflowError
from strato.pipelines.model.tasks import parse_task, strings
from strato.pipelines.model.workflow import TaskSpec, Workflow

_META = set(".^$*+?{}[]\\|()")
_QUANTIFIERS = set("*+?{")


def literal_prefix(pattern: str) -> str:
    """Characters every string ``pattern`` fully matches starts with ('' when unsure)."""
    if "|" in pattern:
        return ""  # an alternative may start anywhere
    end = 0
    while end < len(pattern) and pattern[end] not in _META:
        end += 1
    if end < len(pattern) and pattern[end] in _QUANTIFIERS:
        end -= 1  # 'ab*': the b is optional
    return pattern[: max(end, 0)]


class _Matcher:
    """Strings (task names or outputs) matched by patterns, each pattern once."""

    def __init__(self, values: Iterable[str]) -> None:
        self.sorted = sorted(set(values))
        self.cache: dict[str, list[str]] = {}

    def match(self, pattern: str) -> list[str]:
        hit = self.cache.get(pattern)
        if hit is None:
            regex = re.compile(pattern)
            prefix = literal_prefix(pattern)
            start = bisect.bisect_left(self.sorted, prefix)
            hit = []
            for value in self.sorted[start:]:
                if not value.startswith(prefix):
                    break
                if regex.fullmatch(value):
                    hit.append(value)
            self.cache[pattern] = hit
        return hit


def _find_cycle(parents: dict[str, set[str]], stuck: set[str]) -> list[str]:
    """One cycle among ``stuck`` (tasks Kahn's algorithm could not order), as a path."""
    start = next(iter(sorted(stuck)))
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = sorted(p for p in parents[node] if p in stuck)[0]
    return [*path[seen[node] :], node]


def _check_acyclic(order: Sequence[str], parents: dict[str, set[str]]) -> None:
    children: dict[str, list[str]] = {name: [] for name in order}
    waiting = {name: len(parents[name]) for name in order}
    for name in order:
        for parent in parents[name]:
            children[parent].append(name)
    ready = [name for name in order if waiting[name] == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if done < len(order):
        stuck = {name for name, count in waiting.items() if count > 0}
        cycle = _find_cycle(parents, stuck)
        raise WorkflowError(f"the tasks depend on each other in a cycle: {' -> '.join(cycle)}")


def build_workflow(raw_tasks: Sequence[Any], *, source: str = "the template") -> Workflow:
    """The workflow of rendered tasks (the template's list, in order); WorkflowError naming
    the tasks for a bad directive, a name used twice, a missing ``after``/``before``/``reset``
    target, or a cycle."""
    tasks: dict[str, TaskSpec] = {}
    for index, raw in enumerate(raw_tasks):
        spec = parse_task(raw, index)
        if spec.name in tasks:
            first = list(tasks).index(spec.name) + 1
            raise WorkflowError(
                f"{source}: two tasks are named {spec.name!r} (tasks #{first} and "
                f"#{index + 1}); names must be unique"
            )
        tasks[spec.name] = spec
    parents: dict[str, set[str]] = {name: set() for name in tasks}

    outputs: dict[str, list[str]] = {}
    for name, spec in tasks.items():
        for path in strings(name, "output", spec.directives.get("output")):
            outputs.setdefault(path, []).append(name)
    names = _Matcher(tasks)
    produced = _Matcher(outputs)

    for name, spec in tasks.items():
        d = spec.directives
        for target in strings(name, "after", d.get("after")):
            if target not in tasks:
                raise WorkflowError(f"task {name!r} is after {target!r}, which is no task")
            parents[name].add(target)
        for target in strings(name, "before", d.get("before")):
            if target not in tasks:
                raise WorkflowError(f"task {name!r} is before {target!r}, which is no task")
            parents[target].add(name)
        # Matches of a task with itself are no edges: a task whose input is its own
        # output, or whose pattern matches its own name, does not wait for itself.
        found: set[str] = set()
        for path in strings(name, "input", d.get("input")):
            found.update(outputs.get(path, ()))
        for pattern in strings(name, "after-re", d.get("after-re")):
            found.update(names.match(pattern))
        for pattern in strings(name, "input-re", d.get("input-re")):
            for path in produced.match(pattern):
                found.update(outputs[path])
        found.discard(name)
        parents[name].update(found)
        for pattern in strings(name, "before-re", d.get("before-re")):
            for target in names.match(pattern):
                if target != name:
                    parents[target].add(name)
        if spec.reset != "parents":
            for target in spec.reset:
                if target not in tasks:
                    raise WorkflowError(f"task {name!r} resets {target!r}, which is no task")

    _check_acyclic(list(tasks), parents)
    return Workflow(tasks=tasks, parents={name: frozenset(ps) for name, ps in parents.items()})
