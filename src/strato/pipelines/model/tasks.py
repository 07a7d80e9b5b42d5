"""One rendered task's directives checked and turned into a :class:`TaskSpec`.

Directives (Jetstream's): ``name``, ``cmd``, ``after``, ``before``, ``input``, ``output``,
``after-re``, ``before-re``, ``input-re``, ``retry``, ``cpus``, ``mem``, ``walltime``,
``stdin``, ``stdout``, ``stderr``, ``reset``, ``exec``; any other is kept as metadata in
``TaskSpec.directives``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from strato.pipelines.model.errors import WorkflowError
from strato.pipelines.model.workflow import IDENTITY_DIRECTIVES, TaskSpec

NAME_RE = re.compile(r"^[A-Za-z0-9_-]*$")
NAME_MAX = 200
# The directives naming tasks, files or patterns: a string or a list of strings.
LIST_DIRECTIVES = ("after", "before", "input", "output", "after-re", "before-re", "input-re")
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_MEM_FACTOR = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
_WALLTIME_RE = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})$")


def identity(directives: dict[str, Any]) -> str:
    """sha256 of the directives that change what a task produces, as stable JSON."""
    picked = {key: directives.get(key) for key in IDENTITY_DIRECTIVES}
    text = json.dumps(picked, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _fail(task: str, directive: str, problem: str) -> WorkflowError:
    return WorkflowError(f"task {task!r}: {directive}: {problem}")


def strings(task: str, directive: str, value: Any) -> tuple[str, ...]:
    """A directive that is a string or a list of strings, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _fail(task, directive, f"expected a string or a list of strings, got {value!r:.100}")


def _count(task: str, directive: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        else:
            raise _fail(task, directive, f"expected a whole number, got {value!r:.100}")
    if value < minimum:
        raise _fail(task, directive, f"must be at least {minimum}, got {value}")
    return int(value)


def parse_mem(task: str, value: Any) -> int:
    """MB: a number is MB; '4G', '512M', '100K', '1T' (B, iB suffixes allowed)."""
    if value is None:
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise _fail(task, "mem", f"must not be negative, got {value}")
        return int(value)
    match = _MEM_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(task, "mem", f"expected MB or a size like '4G' or '512M', got {value!r:.100}")
    mb = float(match.group(1)) * _MEM_FACTOR[match.group(2).upper()]
    return max(1, int(mb + 0.999999)) if mb > 0 else 0


def parse_walltime(task: str, value: Any) -> float | None:
    """Seconds: a number of seconds, 'HH:MM:SS' or 'D-HH:MM:SS'."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise _fail(task, "walltime", f"must be positive, got {value}")
        return float(value)
    match = _WALLTIME_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _fail(
            task, "walltime", f"expected seconds, 'HH:MM:SS' or 'D-HH:MM:SS', got {value!r:.100}"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise _fail(task, "walltime", f"minutes and seconds go to 59, got {value!r}")
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise _fail(task, "walltime", f"must be positive, got {value!r}")
    return float(total)


def _or(value: Any, default: int) -> Any:
    return default if value is None else value


def _text(task: str, directive: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _fail(task, directive, f"expected a string, got {value!r:.100}")


def _compile(task: str, directive: str, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(task, directive, f"invalid regular expression {pattern!r}: {exc}") from None


def parse_task(raw: Any, index: int) -> TaskSpec:
    """The task at ``index`` (0-based) of the rendered list. A task with no name is named
    by its identity, as in Jetstream."""
    if not isinstance(raw, dict):
        raise WorkflowError(
            f"task #{index + 1}: expected a mapping of directives, got {raw!r:.100}"
        )
    directives = {str(k): v for k, v in raw.items()}
    name = directives.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    if name is not None and not isinstance(name, str):
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = str(name)  # name: 1 in YAML
        else:
            raise _fail(label, "name", f"expected a string, got {name!r:.100}")
    if name is not None and (not NAME_RE.match(name) or len(name) > NAME_MAX):
        raise _fail(label, "name", f"{name!r:.100} is not a task name (letters, digits, '_', '-')")
    cmd = directives.get("cmd")
    if cmd is not None and not isinstance(cmd, str):
        raise _fail(label, "cmd", f"expected a string (bash), got {cmd!r:.100}")
    for key in LIST_DIRECTIVES:
        values = strings(label, key, directives.get(key))
        if key.endswith("-re"):
            _compile(label, key, values)
    digest = identity(directives)
    name = name or digest
    directives["name"] = name
    reset_raw = directives.get("reset")
    reset: tuple[str, ...] | Literal["parents"] = (
        "parents" if reset_raw == "parents" else strings(name, "reset", reset_raw)
    )
    stdin = directives.get("stdin")
    if isinstance(stdin, (dict, list)):
        raise _fail(name, "stdin", f"expected text, got {stdin!r:.100}")
    return TaskSpec(
        name=name,
        cmd=cmd,
        cpus=_count(name, "cpus", _or(directives.get("cpus"), 1), 1),
        mem_mb=parse_mem(name, directives.get("mem")),
        walltime_s=parse_walltime(name, directives.get("walltime")),
        retry=_count(name, "retry", _or(directives.get("retry"), 0), 0),
        stdin=None if stdin is None else str(stdin),
        stdout=_text(name, "stdout", directives.get("stdout")),
        stderr=_text(name, "stderr", directives.get("stderr")),
        reset=reset,
        directives=directives,
        identity=digest,
    )
