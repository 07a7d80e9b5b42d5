"""What every provider of remote processes is, and the routing of ids to them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, Protocol

from strato.errors import InvalidInput, StratoError
from strato.job_engine import TaskContext
from strato.processes.model.description import (
    TRANSMISSION,
    InputDescription,
    OutputDescription,
    ProcessDescription,
)
from strato.processes.settings import ProviderSettings

log = logging.getLogger(__name__)


class RemoteFailed(StratoError):
    """The remote side refused or failed a job; the message is its reason."""

    code = "remote-failed"
    title = "The remote process failed"


class Provider(Protocol):
    """One place processes run, other than this node's job engine."""

    settings: ProviderSettings

    def processes(self) -> list[ProcessDescription]:
        """Its processes, under their remote ids."""
        ...

    def describe(self, process_id: str) -> ProcessDescription:
        """One process under its remote id; NoSuchProcess if it has none."""
        ...

    def run(self, process_id: str, inputs: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        """Execute it there and follow it to its end (blocking, in a job's task): its
        progress reported through ``ctx``, cancelled there when ``ctx`` is, its outputs
        returned as JSON; RemoteFailed with the remote's reason."""
        ...

    def close(self) -> None: ...


def open_provider(settings: ProviderSettings) -> Provider:
    # Each kind's client library is imported only when configured.
    if settings.kind == "ogc":
        from strato.processes.providers.ogc import OgcProvider

        return OgcProvider(settings)
    if settings.kind == "zmq":
        from strato.processes.providers.zmq import ZmqProvider

        return ZmqProvider(settings)
    if settings.kind == "celery":
        from strato.processes.providers.celery_queue import CeleryProvider

        return CeleryProvider(settings)
    raise AssertionError(f"unknown provider kind {settings.kind!r}")  # the settings refuse it


def find(providers: Sequence[ProviderSettings], prefix: str) -> ProviderSettings:
    for given in providers:
        if given.prefix == prefix:
            return given
    raise InvalidInput(f"no provider with the prefix {prefix!r} is configured here")


class Providers:
    """The providers of a node: ids routed by their longest matching prefix, remote
    descriptions kept for ``refresh`` seconds (a listing must not ask every remote
    server every time)."""

    def __init__(self, settings: Sequence[ProviderSettings]) -> None:
        self._providers = sorted(
            (open_provider(s) for s in settings), key=lambda p: -len(p.settings.prefix)
        )
        self._lock = threading.Lock()
        self._lists: dict[str, tuple[float, list[ProcessDescription]]] = {}
        self._one: dict[tuple[str, str], tuple[float, ProcessDescription]] = {}

    def route(self, process_id: str) -> tuple[Provider, str] | None:
        """The provider of ``process_id`` and the id it is known by there."""
        for provider in self._providers:
            prefix = provider.settings.prefix
            if process_id.startswith(prefix) and len(process_id) > len(prefix):
                remote = process_id[len(prefix) :] if provider.settings.strip_prefix else process_id
                return provider, remote
        return None

    def local_id(self, provider: Provider, remote_id: str) -> str:
        return provider.settings.prefix + remote_id if provider.settings.strip_prefix else remote_id

    def describe(self, provider: Provider, remote_id: str) -> ProcessDescription:
        key = (provider.settings.prefix, remote_id)
        with self._lock:
            kept = self._one.get(key)
        if kept is not None and time.monotonic() - kept[0] < provider.settings.refresh:
            return kept[1]
        found = replace(provider.describe(remote_id), id=self.local_id(provider, remote_id))
        with self._lock:
            self._one[key] = (time.monotonic(), found)
        return found

    def all(self) -> list[ProcessDescription]:
        """Every remote process under its id here; a provider that cannot be reached is
        left out of the listing (and logged), not the cause of a failed listing."""
        found: list[ProcessDescription] = []
        for provider in self._providers:
            prefix = provider.settings.prefix
            with self._lock:
                kept = self._lists.get(prefix)
            if kept is None or time.monotonic() - kept[0] >= provider.settings.refresh:
                try:
                    listed = [
                        replace(d, id=self.local_id(provider, d.id)) for d in provider.processes()
                    ]
                except StratoError as exc:
                    log.warning("provider %r: its processes are not listed: %s", prefix, exc)
                    continue
                kept = (time.monotonic(), listed)
                with self._lock:
                    self._lists[prefix] = kept
            found.extend(kept[1])
        return found

    def close(self) -> None:
        for provider in self._providers:
            provider.close()


def description_from_json(doc: Mapping[str, Any]) -> ProcessDescription:
    """A remote process description (process-description.yaml) as ours; InvalidInput
    when it is not one."""
    try:
        inputs = {
            str(name): InputDescription(
                title=str(given.get("title", name)),
                schema=dict(given.get("schema") or {}),
                description=str(given.get("description", "")),
                min_occurs=int(given.get("minOccurs", 1)),
                max_occurs=_max(given.get("maxOccurs", 1)),
                keywords=tuple(str(k) for k in given.get("keywords", ())),
            )
            for name, given in dict(doc.get("inputs") or {}).items()
        }
        outputs = {
            str(name): OutputDescription(
                title=str(made.get("title", name)),
                schema=dict(made.get("schema") or {}),
                description=str(made.get("description", "")),
            )
            for name, made in dict(doc.get("outputs") or {}).items()
        }
        transmission = tuple(
            t for t in doc.get("outputTransmission", TRANSMISSION) if t in TRANSMISSION
        )
        return ProcessDescription(
            id=str(doc["id"]),
            title=str(doc.get("title", doc["id"])),
            version=str(doc.get("version", "")),
            inputs=inputs,
            outputs=outputs,
            description=str(doc.get("description", "")),
            keywords=tuple(str(k) for k in doc.get("keywords", ())),
            # The job that follows the remote one is this node's: it runs either way.
            output_transmission=transmission or TRANSMISSION,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"not a process description: {type(exc).__name__}: {exc}") from None


def _max(value: Any) -> int | Literal["unbounded"]:
    return "unbounded" if value == "unbounded" else int(value)
