"""The task that runs a remote process as a job of this node: it finds the provider by
the prefix the job names in this worker's own settings (never an address from the
request), runs the process there and returns its outputs."""

from __future__ import annotations

from typing import Any

from strato.job_engine import TaskContext
from strato.processes.providers.base import find, open_provider
from strato.processes.settings import ProcessesSettings
from strato.settings import Settings, load_settings

TASK = "strato.processes.providers.forward:run"


def wrap(prefix: str, process_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The job's inputs: which provider, the process there, its inputs."""
    return {"provider": prefix, "process": process_id, "inputs": inputs}


def run(inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    given = getattr(ctx, "settings", None)
    settings = given if isinstance(given, Settings) else load_settings()
    options = ProcessesSettings.of(settings)
    provider = open_provider(find(options.providers, str(inputs["provider"])))
    try:
        return provider.run(str(inputs["process"]), dict(inputs["inputs"]), ctx)
    finally:
        provider.close()
