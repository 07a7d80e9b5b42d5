"""The job engine's task that runs one attempt of a pipeline task (the ``jobs`` backend,
:mod:`strato.pipelines.backends.jobs`): ``bash -c cmd`` in the run's project directory,
in a process group of its own, its output into the attempt's log, stopped (SIGTERM,
then SIGKILL after the grace) when the job is cancelled or its walltime passes.

It runs wherever the job engine's executor runs tasks (a worker process of the local
pool, a Celery worker), with inputs that crossed a process boundary: each is checked
before anything is started. How the command ended is the job's output; a command that
fails is a job that succeeded in running it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from strato.errors import InvalidInput
from strato.job_engine import TaskContext

TASK = "strato.pipelines.backends.job_task:run_attempt"
PROCESS_ID = "pipeline-task"
POLL = 0.05  # seconds between looks at the command and at the job's cancel flag


def _text(inputs: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = inputs.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or "\0" in value:
        raise InvalidInput(f"{key}: text without NUL")
    return value


def _checked(
    inputs: Any,
) -> tuple[str, Path, Path, dict[str, str], str | None, float | None, float]:
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: an object")
    cmd = _text(inputs, "cmd")
    cwd = Path(_text(inputs, "cwd") or "")
    log = Path(_text(inputs, "log") or "")
    if not cwd.is_absolute() or not log.is_absolute():
        raise InvalidInput("cwd, log: absolute paths")
    env = inputs.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\0" not in k + v and "=" not in k and k
        for k, v in env.items()
    ):
        raise InvalidInput("env: names and values as text")
    stdin = _text(inputs, "stdin", optional=True)
    walltime = inputs.get("walltime_s")
    grace = inputs.get("kill_grace", 5.0)
    for name, number in (("walltime_s", walltime), ("kill_grace", grace)):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int | float) or number < 0
        ):
            raise InvalidInput(f"{name}: a number of seconds")
    assert cmd is not None
    return cmd, cwd, log, env, stdin, walltime, float(grace)


def run_attempt(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    cmd, cwd, log_path, env, stdin_text, walltime, grace = _checked(inputs)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stdin: int | IO[bytes] = subprocess.DEVNULL
    with log_path.open("ab") as log, tempfile.TemporaryFile() as given:
        if stdin_text is not None:
            given.write(stdin_text.encode())
            given.flush()
            given.seek(0)
            stdin = given
        process = subprocess.Popen(
            ["bash", "-c", cmd],
            cwd=cwd,
            env={**os.environ, **env},
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = None if walltime is None else time.monotonic() + walltime
    reason = ""
    while True:
        try:
            code = process.wait(timeout=POLL)
            break
        except subprocess.TimeoutExpired:
            pass
        if not reason and ctx.cancelled():
            reason = "cancelled"
        elif not reason and deadline is not None and time.monotonic() > deadline:
            reason = "walltime"
        if reason:
            code = _stop(process, grace)
            break
    if code < 0 and not reason:
        reason = f"killed by signal {-code}"
    return {"exit_code": code if code >= 0 else None, "reason": reason}


def _stop(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM to the command's group, SIGKILL after ``grace``; its exit code."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()
