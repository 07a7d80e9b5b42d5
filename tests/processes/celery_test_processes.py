"""Processes of a distribution of their own, installed only on the Celery endpoint's
worker in the tests (the portal node knows them through its provider alone):

- ``waiter`` writes its process id to ``<path>.pid`` (for a test to kill it), reports
  progress and waits until a file appears; when it hears that it is cancelled it writes
  ``<path>.cancelled`` (what the test looks for: the cancel reached the task on the
  worker) and stops;
- ``blob`` writes a result file of ``size`` bytes (a known pattern), more than one
  chunk of the transport when large, and refuses a size over its limit as InvalidInput
  naming the input (a client's error raised by the task itself, on the worker).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from strato.errors import InvalidInput
from strato.processes.model.description import (
    InputDescription,
    OutputDescription,
    ProcessDescription,
)

MOST_SECONDS = 120
MOST_BYTES = 8 << 20


def pattern(size: int) -> bytes:
    """The bytes ``blob`` writes: not all one value, so a chunk out of place shows."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


class Waiter:
    task = "celery_test_processes:wait"

    def describe(self) -> ProcessDescription:
        return ProcessDescription(
            id="waiter",
            title="Waiter",
            version="0.1",
            inputs={
                "path": InputDescription("File to wait for", {"type": "string"}),
                "name": InputDescription("Echoed", {"type": "string", "maxLength": 20}),
            },
            outputs={"echo": OutputDescription("The name", {"type": "string"})},
        )


class Blob:
    task = "celery_test_processes:blob"

    def describe(self) -> ProcessDescription:
        return ProcessDescription(
            id="blob",
            title="Blob",
            version="0.1",
            inputs={"size": InputDescription("Bytes", {"type": "integer", "minimum": 0})},
            outputs={"result": OutputDescription("The file", {"type": "object"})},
        )


waiter = Waiter()
blob_endpoint = Blob()


def wait(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    gate = Path(inputs["path"])
    Path(f"{gate}.pid").write_text(str(os.getpid()))
    ctx.progress(10, f"{inputs['name']} waits at the gate")
    deadline = time.monotonic() + MOST_SECONDS
    while not gate.exists() and time.monotonic() < deadline:
        if ctx.cancelled():
            Path(f"{gate}.cancelled").write_text("cancelled")
            return {"echo": "cancelled"}
        time.sleep(0.02)
    ctx.progress(90, "through")
    return {"echo": inputs["name"]}


def blob(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    size = int(inputs["size"])
    if size > MOST_BYTES:
        raise InvalidInput(f"input 'size' at $.inputs.size: {size} is over {MOST_BYTES}")
    (ctx.result_dir / "blob.nc").write_bytes(pattern(size))
    return {"result": {"href": "blob.nc", "type": "application/x-netcdf"}}
