"""An execute request (OGC API - Processes execute.yaml) and how it asks to be run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from strato.errors import InvalidInput
from strato.processes.model.description import ASYNC, SYNC, ProcessDescription

Mode = Literal["sync", "async"]


@dataclass(frozen=True)
class Subscriber:
    success_uri: str | None = None
    in_progress_uri: str | None = None
    failed_uri: str | None = None

    def __post_init__(self) -> None:
        for name, uri in self.uris().items():
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInput(f"subscriber.{name} must be an http or https URL: {uri!r}")

    def uris(self) -> dict[str, str]:
        named = {
            "successUri": self.success_uri,
            "inProgressUri": self.in_progress_uri,
            "failedUri": self.failed_uri,
        }
        return {name: uri for name, uri in named.items() if uri}


def prefers_async(prefer: str | None) -> bool:
    """Whether a Prefer header (RFC 7240) asks for ``respond-async``."""
    if not prefer:
        return False
    preferences = (p.split(";")[0].strip().lower() for p in prefer.split(","))
    return "respond-async" in preferences


def preferred_wait(prefer: str | None) -> float | None:
    """The seconds of a ``wait=`` preference (RFC 7240 section 4.3), if any; a value that
    is not a number of seconds is ignored, as a preference the server cannot honour."""
    for item in (prefer or "").split(","):
        name, _, value = item.split(";")[0].partition("=")
        if name.strip().lower() == "wait":
            text = value.strip().strip('"')
            if text.isdigit() and len(text) <= 6:
                return float(text)
    return None


def mode_of(process: ProcessDescription, prefer: str | None) -> Mode:
    """How to run it: as the client prefers when the process allows it, else as it can
    (the standard lets the server choose when the preference cannot be met)."""
    wanted: Mode = "async" if prefers_async(prefer) else "sync"
    if wanted == "async" and process.allows(ASYNC):
        return "async"
    if process.allows(SYNC):
        return "sync"
    return "async"


def requested_outputs(
    process: ProcessDescription, outputs: dict[str, Any] | None
) -> dict[str, str]:
    """Output id -> transmission mode of what the request asks for (every output by value
    when it names none)."""
    if not outputs:
        return dict.fromkeys(process.outputs, "value")
    chosen: dict[str, str] = {}
    for name, options in outputs.items():
        if name not in process.outputs:
            known = ", ".join(process.outputs)
            raise InvalidInput(
                f"output {name!r} at $.outputs.{name}: process {process.id!r} has no such "
                f"output (its outputs: {known})"
            )
        mode = (options or {}).get("transmissionMode", "value")
        if mode not in process.output_transmission:
            raise InvalidInput(
                f"output {name!r} at $.outputs.{name}.transmissionMode: {mode!r} is not "
                f"among {', '.join(process.output_transmission)}"
            )
        chosen[name] = mode
    return chosen
