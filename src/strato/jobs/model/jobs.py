"""Pure rules of jobs: ids, task names, one-line reasons."""

from __future__ import annotations

import re
import secrets

from strato.errors import InvalidInput

# "package.module:function", as entry points write objects.
_TASK = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
MAX_REASON = 1000


def new_job_id() -> str:
    """A job id no one can guess (it is the only handle on an anonymous job).

    128 random bits in hex: URL-safe, and never starting with ``-``, which a command line
    would read as an option (`strato jobs cancel -u...`)."""
    return secrets.token_hex(16)


def check_task(task: str) -> str:
    if not _TASK.fullmatch(task):
        raise InvalidInput(f"task: {task!r} is not a 'package.module:function' name")
    return task


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line, at most ``limit`` characters: a status message or a reason."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def reason_of(exc: BaseException) -> str:
    """Why a task failed, in one line: the exception's type and message."""
    text = str(exc).strip()
    return one_line(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
