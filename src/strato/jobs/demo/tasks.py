"""Tasks to try and measure the job engine with."""

from __future__ import annotations

import time
from typing import Any

from strato.job_engine import TaskContext


def noop(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Nothing: what the engine itself costs per job."""
    return {}


def sleep(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Sleep ``seconds`` in ten steps, reporting progress and stopping when cancelled."""
    seconds = float(inputs.get("seconds", 1.0))
    for step in range(10):
        if ctx.cancelled():
            return {"slept": seconds * step / 10}
        time.sleep(seconds / 10)
        ctx.progress((step + 1) * 10, f"step {step + 1} of 10")
    return {"slept": seconds}
