"""A process of another distribution, installed for the tests through the real entry
point path: ``gate`` runs until a file appears (so that a test sees a job running, with
no timing), then echoes ``name`` or fails when ``fail`` is true."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from strato.processes.model.description import (
    InputDescription,
    OutputDescription,
    ProcessDescription,
)

# A gate never opened must not keep a worker forever.
MOST_SECONDS = 120


class Gate:
    task = "strato_test_processes:run"

    def describe(self) -> ProcessDescription:
        return ProcessDescription(
            id="gate",
            title="Gate",
            version="0.1",
            inputs={
                "path": InputDescription("File to wait for", {"type": "string"}),
                "name": InputDescription("Echoed", {"type": "string", "maxLength": 20}),
                "fail": InputDescription("Fail at the end", {"type": "boolean"}, min_occurs=0),
                "note": InputDescription(
                    "Its progress message while it waits", {"type": "string"}, min_occurs=0
                ),
                "sizes": InputDescription(
                    "Numbers", {"type": "integer", "minimum": 0}, min_occurs=0, max_occurs=3
                ),
            },
            outputs={"echo": OutputDescription("The name", {"type": "string"})},
        )


endpoint = Gate()


def run(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    gate = Path(inputs["path"])
    ctx.progress(10, inputs.get("note") or "waiting at the gate")
    deadline = time.monotonic() + MOST_SECONDS
    while not gate.exists() and not ctx.cancelled() and time.monotonic() < deadline:
        time.sleep(0.02)
    if inputs.get("fail"):
        raise RuntimeError("asked to fail")
    return {"echo": inputs["name"]}
