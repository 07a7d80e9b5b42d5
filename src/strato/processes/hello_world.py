"""hello-world, the process every OGC API - Processes server offers for clients to try
(pygeoapi's, input for input): ``echo`` is ``Hello <name>! <message>``."""

from __future__ import annotations

from typing import Any

from strato.job_engine import TaskContext
from strato.processes.model.description import (
    InputDescription,
    OutputDescription,
    ProcessDescription,
)

DESCRIPTION = ProcessDescription(
    id="hello-world",
    title="Hello World",
    version="1.0.0",
    description="An example process that takes a name as input, and echoes it back as "
    "output. Intended to demonstrate a simple process with a single literal input.",
    keywords=("hello world", "example", "echo"),
    inputs={
        "name": InputDescription(
            title="Name",
            description="The name of the person or entity that you wish to be echoed back "
            "as an output",
            schema={"type": "string"},
            keywords=("full name", "personal"),
        ),
        "message": InputDescription(
            title="Message",
            description="An optional message to echo as well",
            schema={"type": "string"},
            min_occurs=0,
        ),
    },
    outputs={
        "echo": OutputDescription(
            title="Hello, world",
            description='A "hello world" echo with the name and (optional) message submitted '
            "for processing",
            schema={"type": "string", "contentMediaType": "text/plain"},
        )
    },
)


class HelloWorld:
    task = "strato.processes.hello_world:run"

    def describe(self) -> ProcessDescription:
        return DESCRIPTION


endpoint = HelloWorld()


def run(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    message = inputs.get("message") or ""
    ctx.progress(50, "greeting")
    return {"echo": f"Hello {inputs['name']}! {message}".strip()}
