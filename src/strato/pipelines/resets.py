"""Which tasks run again when a run is retried or resumed: Jetstream's rules. A task
run again resets the tasks its ``reset`` directive names (``parents``: its parents) and
everything downstream of it, whose inputs it may change."""

from __future__ import annotations

from collections.abc import Iterable

from strato.pipelines.model.workflow import Workflow


def reset_closure(workflow: Workflow, seeds: Iterable[str]) -> set[str]:
    children: dict[str, list[str]] = {name: [] for name in workflow.tasks}
    for name, parents in workflow.parents.items():
        for parent in parents:
            children[parent].append(name)
    found: set[str] = set()
    stack = [s for s in seeds if s in workflow.tasks]
    while stack:
        name = stack.pop()
        if name in found:
            continue
        found.add(name)
        spec = workflow.tasks[name]
        named = workflow.parents.get(name, frozenset()) if spec.reset == "parents" else spec.reset
        stack.extend(n for n in named if n in workflow.tasks)
        stack.extend(children[name])
    return found
