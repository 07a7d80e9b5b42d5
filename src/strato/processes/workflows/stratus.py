"""The Stratus Request Specification (NASA NCCS Stratus, EDAS) translated into a workflow.

A request has three lists::

    {"domain":    [{"name": "d0", "lat": {"start": -30, "end": 30, "system": "values"},
                    "time": {"start": "2001-01-01", "end": "2001-12-31",
                             "system": "timestamps"}}],
     "input":     [{"uri": "collection://<dataset id>", "name": "tas:v0", "domain": "d0"}],
     "operation": [{"name": "xop:subset", "input": "v0", "result": "s0"},
                   {"name": "xop:ave", "input": "s0", "axes": "t"}]}

``variable`` is accepted for ``input``; an axis bound's ``system`` is ``values``,
``indices`` (both ends included) or ``timestamps`` (``crs`` is its older name). An
operation's ``name`` is ``<epa>:<op>`` (or ``epa`` and ``name`` apart, or ``epa`` as
``<epa>.<op>``). A whole name that is a process id this node routes to a provider
(``head:hello-world``, prefix ``head:``) runs that process there; otherwise the epa part
is not used, so ``xop:ave`` and ``edas:ave`` are the same. Its ``input`` names variables
(the part after ``:`` of their name) or other operations' ``result``; ``axes`` are the
letters x, y, z, t (or axis names). Operations whose result no other one takes are the
workflow's outputs, named by their ``result`` (else ``<op>-<position>``).

strato's extension for processes that take no variable: an operation's ``inputs`` object
(instead of ``input``) is the process's inputs as they are, a value ``{"result": <name>}``
(with ``output`` where it has several) being another operation's output.

An ``uri`` is ``collection://<dataset id>`` (a dataset this node serves), a path or a
``file://`` URL (read only under the allowed roots, as the built-in processes read).

A request is bounded before anything in it is used (:func:`check_bounds`; its size is
the web server's ``max_body_bytes``): nesting, the number of domains, inputs and
operations, and the length of every name and uri; each refusal is InvalidInput naming
where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strato import jsonio
from strato.errors import InvalidInput
from strato.processes.model.errors import NoSuchProcess
from strato.processes.workflows.plan import (
    MAX_STEPS,
    Describe,
    Plan,
    check_nesting,
    explicit_plan,
)

EPA = "xop"
# Bounds of a request. A Stratus request is a few lists of small objects: a nesting of
# arrays and objects deeper than MAX_NESTING is no request (and the translation, the
# plan and its validation walk it recursively), more than MAX_ITEMS domains or inputs
# none that was meant. Operations are bounded by a workflow's MAX_STEPS.
MAX_NESTING = 32
MAX_ITEMS = 128
MAX_NAME = 200  # a name, a reference to one, an axis, a system, a bound given as text
MAX_URI = 4096  # as the built-in processes bound a path
# Stratus operation -> (process id, fixed inputs).
OPERATIONS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "ave": ("reduce", {"method": "mean"}),
    "mean": ("reduce", {"method": "mean"}),
    "min": ("reduce", {"method": "min"}),
    "max": ("reduce", {"method": "max"}),
    "sum": ("reduce", {"method": "sum"}),
    "std": ("reduce", {"method": "std"}),
    "subset": ("subset", {}),
    "diff": ("difference", {}),
    "difference": ("difference", {}),
    "anomaly": ("anomaly", {}),
    "climatology": ("climatology", {}),
    "resample": ("resample", {}),
}
_AXES = {"x": "lon", "y": "lat", "z": "level", "t": "time"}
_DOMAIN_AXES = {
    "lat": "lat",
    "y": "lat",
    "lon": "lon",
    "x": "lon",
    "lev": "level",
    "level": "level",
    "z": "level",
    "time": "time",
    "t": "time",
}
# Options of an operation passed on to its process as they are.
_PASSED = ("freq", "by", "weighted", "format")


def epas(process_ids: list[str]) -> list[str]:
    """The operations this node offers as Stratus names them (a provider's process by
    its prefixed id, ``head:hello-world``, which names the provider as an epa did)."""
    named = [f"{EPA}:{op}" for op, (pid, _) in OPERATIONS.items() if pid in process_ids]
    aliased = {pid for pid, _ in OPERATIONS.values()}
    return named + [
        pid if ":" in pid else f"{EPA}:{pid}" for pid in process_ids if pid not in aliased
    ]


def parse_request(body: bytes) -> dict[str, Any]:
    """The request a body carries (a Stratus client may wrap it as ``{"request": ...}``),
    bounded (:func:`check_bounds`); InvalidInput saying what is wrong with it."""
    if not body.strip():
        raise InvalidInput("the body is empty: a Stratus request is a JSON object")
    try:
        parsed = jsonio.loads(body)
    except RecursionError:
        raise InvalidInput(
            f"the body nests deeper than a request does (at most {MAX_NESTING} levels)"
        ) from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidInput(f"the body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            f"the body is a JSON {type(parsed).__name__}, not an object with operation, "
            "domain and input lists"
        )
    spec = parsed.get("request", parsed)
    if not isinstance(spec, dict):
        raise InvalidInput("request: an object with operation, domain and input lists")
    check_bounds(spec)
    return spec


def check_bounds(request: Mapping[str, Any]) -> None:
    """InvalidInput when ``request`` nests deeper than MAX_NESTING."""
    check_nesting(request, "request", MAX_NESTING)


def _text(value: Any, where: str, limit: int = MAX_NAME) -> str:
    """A non-empty string of at most ``limit`` characters."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: a non-empty string")
    if len(value) > limit:
        raise InvalidInput(f"{where}: at most {limit} characters, not {len(value)}")
    return value


def _list(request: Mapping[str, Any], *keys: str, limit: int = MAX_ITEMS) -> list[Any]:
    for key in keys:
        if key in request:
            value = request[key]
            if isinstance(value, dict):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise InvalidInput(f"{key}: a list of objects")
            if len(value) > limit:
                raise InvalidInput(f"{key}: at most {limit}, not {len(value)}")
            return value
    return []


def _bound(value: Any, where: str) -> Any:
    """One end of an axis's range: a number, or a date or number as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput(f"{where}: a number, or a date as text")
    if isinstance(value, str):
        _text(value, where)
    return value


def _domain(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, bound in spec.items():
        if key == "name":
            continue
        axis = _DOMAIN_AXES.get(str(key).lower())
        if axis is None:
            raise InvalidInput(f"{where}.{str(key)[:40]}: an axis is lat, lon, lev or time")
        if not isinstance(bound, dict) or "start" not in bound:
            raise InvalidInput(f"{where}.{key}: {{start, end, system}}")
        start = _bound(bound["start"], f"{where}.{key}.start")
        end = _bound(bound.get("end", start), f"{where}.{key}.end")
        given = bound.get("system", bound.get("crs", "values"))
        system = _text(given, f"{where}.{key}.system").lower()
        if system.startswith("ind"):
            out[axis] = {"index": [start, end]}
        elif system.startswith(("val", "time")):
            out[axis] = [start, end]
        else:
            raise InvalidInput(
                f"{where}.{key}.system: values, indices or timestamps, not {system!r}"
            )
    return out


def _source(uri: Any, where: str) -> dict[str, str]:
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"{where}: a collection://<dataset>, path or file:// URL")
    _text(uri, where, MAX_URI)
    if uri.startswith("collection://") or uri.startswith("collection:"):
        return {"dataset": uri.split(":", 1)[1].lstrip("/")}
    return {"href": uri}


def _full_name(op: Mapping[str, Any], where: str) -> str:
    name = _reference(op, "name", where) or ""
    epa = _reference(op, "epa", where) or ""
    if not name and epa:
        name = epa.replace(".", ":", 1) if "." in epa and ":" not in epa else epa
    if not name:
        raise InvalidInput(f"{where}.name: an operation is named <epa>:<op>")
    return name


def _op_name(op: Mapping[str, Any], where: str) -> str:
    return _full_name(op, where).rsplit(":", 1)[-1]


def _process(op: Mapping[str, Any], where: str, describe: Describe) -> tuple[str, dict[str, Any]]:
    """The process an operation names and its fixed inputs: the whole name when it is an
    id this node routes (``head:hello-world``, a provider's prefix), else the op part."""
    full = _full_name(op, where)
    if ":" in full and not full.startswith(f"{EPA}:"):
        try:
            describe(full)
        except NoSuchProcess:
            pass
        else:
            return full, {}
    name = full.rsplit(":", 1)[-1]
    pid, fixed = OPERATIONS.get(name, (name, {}))
    try:
        describe(pid)
    except NoSuchProcess:
        raise NoSuchProcess(
            f"no operation {full!r} is offered here (at {where}.name); "
            "see /stratus/capabilities?type=epas"
        ) from None
    return pid, dict(fixed)


def _only_output(pid: str, describe: Describe, where: str) -> str:
    outputs = list(describe(pid).outputs)
    if len(outputs) == 1:
        return outputs[0]
    if "result" in outputs:
        return "result"
    raise InvalidInput(f"{where}: process {pid!r} has several outputs ({', '.join(outputs)})")


def _given_inputs(
    value: Any,
    where: str,
    own: str,
    results: Mapping[str, str],
    taken: set[str],
    outputs: Mapping[str, str],
) -> Any:
    """An operation's ``inputs`` object, ``{"result": <name>}`` values becoming references
    to the operations that make them."""
    if isinstance(value, dict) and set(value) <= {"result", "output"} and "result" in value:
        ref = _text(value["result"], f"{where}.result")
        if ref not in results:
            raise InvalidInput(f"{where}: no operation's result is called {ref!r}")
        step = results[ref]
        if step == own:
            raise InvalidInput(f"{where}: an operation cannot take its result")
        taken.add(step)
        given = value.get("output")
        output = _text(given, f"{where}.output") if given is not None else outputs[step]
        return {"step": step, "output": output}
    if isinstance(value, dict):
        return {
            k: _given_inputs(v, f"{where}.{k}", own, results, taken, outputs)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _given_inputs(v, f"{where}[{i}]", own, results, taken, outputs)
            for i, v in enumerate(value)
        ]
    return value


def _axes(value: Any, where: str) -> list[str]:
    if isinstance(value, list):
        if len(value) > len(_DOMAIN_AXES):
            raise InvalidInput(f"{where}: at most {len(_DOMAIN_AXES)} axes")
        return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: letters of x, y, z, t or a list of axis names")
    _text(value, where)
    if "," in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    axes = []
    for letter in value.lower():
        if letter not in _AXES:
            raise InvalidInput(f"{where}: {letter!r} is none of x, y, z, t")
        axes.append(_AXES[letter])
    return axes


def _reference(spec: Mapping[str, Any], key: str, where: str) -> str | None:
    """A name another list's item is referred to by, when given."""
    value = spec.get(key)
    return None if value is None or value == "" else _text(value, f"{where}.{key}")


def translate(request: Mapping[str, Any], describe: Describe) -> Plan:
    """The workflow a Stratus request asks for (checked as any workflow is)."""
    check_bounds(request)
    domains = {}
    for i, spec in enumerate(_list(request, "domain", "domains")):
        name = _reference(spec, "name", f"domain[{i}]") or f"d{i}"
        if name in domains:
            raise InvalidInput(f"domain[{i}].name: a second domain called {name!r}")
        domains[name] = _domain(spec, f"domain[{i}]")
    variables: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(_list(request, "input", "variable", "variables")):
        where = f"input[{i}]"
        var, _, uid = _text(spec.get("name"), f"{where}.name").partition(":")
        if not var:
            raise InvalidInput(f"{where}.name: <variable>:<id>")
        if (uid or var) in variables:
            raise InvalidInput(f"{where}.name: a second input called {uid or var!r}")
        value: dict[str, Any] = {**_source(spec.get("uri"), f"{where}.uri"), "variable": var}
        dom = _reference(spec, "domain", where)
        if dom is not None:
            if dom not in domains:
                raise InvalidInput(f"{where}.domain: there is no domain {dom!r}")
            value["domain"] = domains[dom]
        variables[uid or var] = value
    operations = _list(request, "operation", "operations", limit=MAX_STEPS)
    if not operations:
        raise InvalidInput("operation: at least one operation")
    results: dict[str, str] = {}
    for i, op in enumerate(operations):
        result = _reference(op, "result", f"operation[{i}]")
        if result is not None:
            if result in results:
                raise InvalidInput(f"operation[{i}].result: a second result called {result!r}")
            results[result] = f"op{i}"
    variable_of = {f"op{i}": "" for i in range(len(operations))}
    steps: dict[str, Any] = {}
    taken: set[str] = set()
    processes = [_process(op, f"operation[{i}]", describe) for i, op in enumerate(operations)]
    outputs_of = {
        f"op{i}": _only_output(pid, describe, f"operation[{i}]")
        for i, (pid, _) in enumerate(processes)
    }
    for i, op in enumerate(operations):
        where = f"operation[{i}]"
        name = _op_name(op, where)
        pid, fixed = processes[i]
        if "inputs" in op:
            # strato's extension: a process's own inputs, for processes that take no
            # variable (hello-world); {"result": <name>} is another operation's output.
            if not isinstance(op["inputs"], dict) or "input" in op:
                raise InvalidInput(
                    f"{where}.inputs: an object of the process's inputs, without input"
                )
            bound = _given_inputs(
                op["inputs"], f"{where}.inputs", f"op{i}", results, taken, outputs_of
            )
            steps[f"op{i}"] = {"process": pid, "inputs": {**fixed, **bound}}
            continue
        given = op.get("input", [])
        if isinstance(given, str):
            names = [n.strip() for n in _text(given, f"{where}.input").split(",")]
        else:
            names = given
        if not isinstance(names, list) or not names or len(names) > MAX_ITEMS:
            raise InvalidInput(
                f"{where}.input: a variable id or result name, or a list of at most {MAX_ITEMS}"
            )
        operands = []
        for j, named in enumerate(names):
            ref = _text(named, f"{where}.input[{j}]")
            if ref in variables:
                operands.append(dict(variables[ref]))
            elif ref in results:
                step = results[ref]
                if step == f"op{i}":
                    raise InvalidInput(f"{where}.input[{j}]: an operation cannot take its result")
                taken.add(step)
                operands.append(
                    {
                        "href": {"step": step, "output": outputs_of[step]},
                        "variable": variable_of[step],
                    }
                )
            else:
                raise InvalidInput(f"{where}.input[{j}]: no input or result is called {ref!r}")
        variable_of[f"op{i}"] = operands[0]["variable"]
        inputs: dict[str, Any] = dict(fixed)
        if pid == "difference":
            if len(operands) != 2:
                raise InvalidInput(f"{where}.input: a difference takes two inputs")
            inputs |= {"a": operands[0], "b": operands[1]}
        else:
            if len(operands) != 1:
                raise InvalidInput(f"{where}.input: {name} takes one input")
            inputs |= operands[0]
        dom = _reference(op, "domain", where)
        if dom is not None:
            if dom not in domains:
                raise InvalidInput(f"{where}.domain: there is no domain {dom!r}")
            inputs["domain"] = domains[dom]
        for key in ("axes", "axis"):
            if key in op:
                inputs["axes"] = _axes(op[key], f"{where}.{key}")
        inputs |= {k: op[k] for k in _PASSED if k in op}
        steps[f"op{i}"] = {"process": pid, "inputs": inputs}
    outputs = {}
    for i, op in enumerate(operations):
        step = f"op{i}"
        if step not in taken:
            name = _reference(op, "result", f"operation[{i}]") or f"{_op_name(op, '')}-{i}"
            outputs[name] = {"step": step, "output": outputs_of[step]}
    return explicit_plan({"steps": steps, "outputs": outputs}, describe)
