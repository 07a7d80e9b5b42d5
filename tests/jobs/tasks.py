"""Task functions the job engine tests run in worker processes (imported by name there)."""

from __future__ import annotations

import os
import time
from typing import Any

from strato.job_engine import RetryableTaskError, TaskContext

# Long enough never to end by itself within a test, short enough not to outlive a run.
FOREVER = 120.0


def echo(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    return {"echo": inputs, "job": ctx.job_id}


def fail(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    raise ValueError("the input is bad\nand this second line is not the reason's")


def not_json(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    return {"value": object()}


def write_file(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    path = ctx.result_dir / "out.txt"
    path.write_text(inputs["text"])
    return {"href": str(path)}


def until_cancelled(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Reports progress, then works in small steps until it is cancelled."""
    ctx.progress(40, "halfway there")
    deadline = time.monotonic() + FOREVER
    while not ctx.cancelled() and time.monotonic() < deadline:
        time.sleep(0.01)
    marker = inputs.get("marker")
    if marker:
        with open(marker, "w") as f:
            f.write("saw the cancellation")
    return {"cancelled": ctx.cancelled()}


def deaf(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Never looks at cancellation: only killing its worker stops it."""
    ctx.progress(10, f"pid {os.getpid()}")
    time.sleep(FOREVER)
    return {}


def die_once(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """The first run reports its worker's pid and waits to be killed; a run after that
    finds its marker and succeeds."""
    marker = ctx.result_dir / "ran-before"
    if marker.exists():
        return {"attempt": "again"}
    marker.write_text("")
    ctx.progress(10, f"pid {os.getpid()}")
    time.sleep(FOREVER)
    return {"attempt": "first"}


def flaky(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fails retryably the first time, succeeds the next."""
    marker = ctx.result_dir / "failed-before"
    if not marker.exists():
        marker.write_text("")
        raise RetryableTaskError("the remote service is down")
    return {"ok": True}
