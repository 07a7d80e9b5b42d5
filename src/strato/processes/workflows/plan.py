"""A workflow's plan: named steps, each a process call whose inputs may be other steps'
outputs, and the workflow's outputs (several allowed), checked before anything runs.

Two ways to write one, both turned into the same :class:`Plan`:

- OGC API - Processes Part 3 nested processes: an input value
  ``{"process": ".../processes/<id>", "inputs": {...}, "outputs": {"<out>": {}}}`` in an
  execute request is a call whose (one) output becomes that value; it may nest again.
- The ``workflow`` process's explicit form, for several outputs and steps shared by
  several others: ``{"steps": {"<name>": {"process": "<id>", "inputs": {...}}},
  "outputs": {"<name>": {"step": "<step>", "output": "<out>"}}}``, where an input value
  ``{"step": "<step>", "output": "<out>"}`` is another step's output (``output`` may be
  left out when that process has one). Nested processes may appear in its steps too.

Everything is checked before a step runs: unknown process ids (no-such-process, saying
where), references to unknown steps or outputs, cycles, and bounds on the number of steps
and the depth of the graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strato.errors import InvalidInput
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchProcess

MAX_STEPS = 64
MAX_DEPTH = 16
# The nesting of arrays and objects a workflow's inputs may have: generous for any
# process's inputs (a GeoJSON geometry is a few levels), far under what the recursive
# walks of a plan, the validation of its steps and their binding can take (a nesting of
# 600, under the JSON parser's limit, exhausted the stack: a 500).
MAX_NESTING = 64
WORKFLOW = "workflow"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_NESTED_KEYS = frozenset({"process", "inputs", "outputs"})
_REF_KEYS = frozenset({"step", "output"})

Describe = Callable[[str], ProcessDescription]  # NoSuchProcess when unknown


@dataclass(frozen=True)
class Ref:
    """The output ``output`` of step ``step``."""

    step: str
    output: str

    def to_json(self) -> dict[str, str]:
        return {"step": self.step, "output": self.output}


@dataclass(frozen=True)
class Step:
    name: str
    process_id: str
    inputs: dict[str, Any]  # JSON, with {"step": ..., "output": ...} where a Ref goes
    needs: frozenset[str]


@dataclass(frozen=True)
class Plan:
    steps: dict[str, Step]  # in an order where each step comes after those it needs
    outputs: dict[str, Ref]

    def to_json(self) -> dict[str, Any]:
        """The explicit form (what the workflow job keeps as its inputs)."""
        return {
            "steps": {
                s.name: {"process": s.process_id, "inputs": s.inputs} for s in self.steps.values()
            },
            "outputs": {name: ref.to_json() for name, ref in self.outputs.items()},
        }


def is_ref(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "step" in value
        and set(value) <= _REF_KEYS
        and all(isinstance(v, str) for v in value.values())
    )


def is_nested(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("process"), str)
        and (set(value) <= _NESTED_KEYS)
    )


def has_nested(inputs: Mapping[str, Any]) -> bool:
    """Whether an execute request's inputs call other processes (Part 3)."""

    def walk(value: Any, depth: int) -> bool:
        if depth > MAX_DEPTH * 4:
            return False
        if is_nested(value):
            return True
        if isinstance(value, dict):
            return any(walk(v, depth + 1) for v in value.values())
        if isinstance(value, list):
            return any(walk(v, depth + 1) for v in value)
        return False

    return walk(dict(inputs), 0)


def process_id_of(reference: str, where: str) -> str:
    """``.../processes/<id>`` or a bare id -> the id."""
    ref = reference.rstrip("/")
    pid = ref.rsplit("/processes/", 1)[1] if "/processes/" in ref else ref
    if not pid or "/" in pid:
        raise InvalidInput(f"{where}: {reference!r} names no process (.../processes/<id>)")
    return pid


class _Builder:
    def __init__(self, describe: Describe) -> None:
        self.describe = describe
        self.steps: dict[str, Step] = {}
        self.pending: dict[str, tuple[str, dict[str, Any], str]] = {}  # name -> pid, inputs, where
        self.descriptions: dict[str, ProcessDescription] = {}

    def process(self, reference: Any, where: str) -> ProcessDescription:
        if not isinstance(reference, str):
            raise InvalidInput(f"{where}: the process is named by a string")
        pid = process_id_of(reference, where)
        try:
            return self.describe(pid)
        except NoSuchProcess:
            raise NoSuchProcess(f"no process {pid!r} is offered here (at {where})") from None

    def add(self, name: str, call: Any, where: str) -> None:
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"{where}: a step name is a letter then letters, digits, _.-")
        if not isinstance(call, dict) or "process" not in call:
            raise InvalidInput(f'{where}: a step is {{"process": ..., "inputs": {{...}}}}')
        unknown = set(call) - _NESTED_KEYS
        if unknown:
            raise InvalidInput(f"{where}: a step has no member {sorted(unknown)[0]!r}")
        if name in self.steps or name in self.pending:
            raise InvalidInput(f"{where}: two steps are called {name!r}")
        if len(self.steps) + len(self.pending) >= MAX_STEPS:
            raise InvalidInput(f"{where}: a workflow has at most {MAX_STEPS} steps")
        description = self.process(call["process"], f"{where}.process")
        inputs = call.get("inputs", {})
        if not isinstance(inputs, dict):
            raise InvalidInput(f"{where}.inputs: an object of inputs")
        for key in inputs:
            if key not in description.inputs:
                known = ", ".join(description.inputs) or "none"
                raise InvalidInput(
                    f"{where}.inputs.{key}: process {description.id!r} has no input {key!r} "
                    f"(its inputs: {known})"
                )
        self.descriptions[name] = description
        self.pending[name] = (description.id, inputs, where)

    def resolve(self) -> None:
        """Nested calls become steps of their own; each step's needs are found."""
        while self.pending:
            name, (pid, inputs, where) = next(iter(self.pending.items()))
            del self.pending[name]
            needs: set[str] = set()
            resolved = {
                key: self._value(value, f"{where}.inputs.{key}", f"{name}.{key}", needs)
                for key, value in inputs.items()
            }
            self.steps[name] = Step(name, pid, resolved, frozenset(needs))

    def _value(self, value: Any, where: str, name: str, needs: set[str]) -> Any:
        if is_nested(value):
            self.add(name, value, where)
            output = self.only_output(name, value.get("outputs"), where)
            needs.add(name)
            return Ref(name, output).to_json()
        if is_ref(value):
            needs.add(value["step"])
            return dict(value)
        if isinstance(value, dict):
            return {
                k: self._value(v, f"{where}.{k}", f"{name}.{k}", needs) for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self._value(v, f"{where}[{i}]", f"{name}.{i}", needs) for i, v in enumerate(value)
            ]
        return value

    def only_output(self, step: str, outputs: Any, where: str) -> str:
        made = self.descriptions[step].outputs
        if outputs:
            if not isinstance(outputs, dict) or len(outputs) != 1:
                raise InvalidInput(f"{where}.outputs: a nested process gives one output")
            chosen = str(next(iter(outputs)))
            if chosen not in made:
                raise InvalidInput(f"{where}.outputs: {step!r} has no output {chosen!r}")
            return chosen
        if len(made) != 1:
            raise InvalidInput(
                f"{where}: process {self.descriptions[step].id!r} has several outputs; "
                "name one in outputs"
            )
        return next(iter(made))

    def ref(self, value: Any, where: str) -> Ref:
        if isinstance(value, str):
            value = {"step": value}
        if not is_ref(value):
            raise InvalidInput(f'{where}: {{"step": <name>, "output": <output>}}')
        step = value["step"]
        if step not in self.descriptions:
            raise InvalidInput(f"{where}: there is no step {step!r}")
        output = value.get("output") or self.only_output(step, None, where)
        if output not in self.descriptions[step].outputs:
            raise InvalidInput(f"{where}: step {step!r} has no output {output!r}")
        return Ref(step, output)

    def plan(self, outputs: dict[str, Ref]) -> Plan:
        for step in self.steps.values():
            for need in step.needs:
                if need not in self.steps:
                    raise InvalidInput(f"step {step.name!r}: there is no step {need!r}")
        self._check_refs()
        return Plan(_ordered(self.steps), outputs)

    def _check_refs(self) -> None:
        def walk(value: Any, where: str) -> None:
            if is_ref(value):
                self.ref(value, where)
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, f"{where}.{k}")
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{where}[{i}]")

        for step in self.steps.values():
            walk(step.inputs, f"step {step.name!r} inputs")


def _ordered(steps: dict[str, Step]) -> dict[str, Step]:
    """The steps each after those it needs; InvalidInput naming a cycle, or a chain
    deeper than MAX_DEPTH."""
    order: dict[str, Step] = {}
    depth: dict[str, int] = {}
    visiting: list[str] = []

    def visit(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise InvalidInput(f"the steps form a cycle: {' -> '.join(cycle)}")
        visiting.append(name)
        below = max((visit(need) for need in sorted(steps[name].needs)), default=0)
        visiting.pop()
        if below + 1 > MAX_DEPTH:
            raise InvalidInput(f"step {name!r}: a chain of steps is at most {MAX_DEPTH} deep")
        depth[name] = below + 1
        order[name] = steps[name]
        return depth[name]

    for name in steps:
        visit(name)
    return order


def check_nesting(value: Any, where: str, limit: int = MAX_NESTING) -> None:
    """InvalidInput when ``value`` nests arrays and objects deeper than ``limit``; walked
    without recursion, so that no depth can exhaust the stack here."""
    stack: list[tuple[Any, int, str]] = [(value, 1, where)]
    while stack:
        item, depth, at = stack.pop()
        if depth > limit:
            raise InvalidInput(f"{at}: nests deeper than {limit} levels of arrays and objects")
        if isinstance(item, dict):
            stack.extend((v, depth + 1, f"{at}.{str(k)[:40]}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{at}[{i}]") for i, v in enumerate(item))


def nested_plan(
    process_id: str, inputs: Mapping[str, Any], describe: Describe, root: str = "main"
) -> Plan:
    """A Part 3 execute request of ``process_id`` whose inputs call other processes; the
    workflow's outputs are the outer process's."""
    check_nesting(dict(inputs), "$.inputs")
    builder = _Builder(describe)
    builder.add(root, {"process": process_id, "inputs": dict(inputs)}, "$")
    builder.resolve()
    outputs = {name: Ref(root, name) for name in builder.descriptions[root].outputs}
    return builder.plan(outputs)


def explicit_plan(inputs: Mapping[str, Any], describe: Describe) -> Plan:
    """The ``workflow`` process's inputs: ``steps`` and ``outputs``."""
    check_nesting(dict(inputs), "$.inputs")
    steps, outputs = inputs.get("steps"), inputs.get("outputs")
    if not isinstance(steps, dict) or not steps:
        raise InvalidInput("input 'steps' at $.inputs.steps: an object of named steps")
    if not isinstance(outputs, dict) or not outputs:
        raise InvalidInput("input 'outputs' at $.inputs.outputs: an object of named outputs")
    builder = _Builder(describe)
    for name, call in steps.items():
        builder.add(str(name), call, f"$.inputs.steps.{name}")
    builder.resolve()
    refs = {}
    for name, value in outputs.items():
        if not _NAME.fullmatch(str(name)):
            raise InvalidInput(
                f"$.inputs.outputs.{name}: an output name is a letter then letters, digits, _.-"
            )
        refs[str(name)] = builder.ref(value, f"$.inputs.outputs.{name}")
    return builder.plan(refs)


def plan_from_json(doc: Mapping[str, Any], describe: Describe) -> Plan:
    """A plan kept as :meth:`Plan.to_json` (checked again: processes may have changed)."""
    return explicit_plan(doc, describe)
