"""The processes a node offers, each declared by an :class:`Endpoint`.

An endpoint describes its process and names the task the job engine runs for it (a
module-level ``"module:function"``, see strato.job_engine). Endpoints are found through
the entry point group ``strato.processes``, the entry point's name being the process id,
so a third party adds a process by installing a distribution::

    [project.entry-points."strato.processes"]
    my-process = "my_package.processes:endpoint"
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol, cast

from strato.errors import InvalidInput
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchProcess

log = logging.getLogger(__name__)

GROUP = "strato.processes"
_TASK = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class Endpoint(Protocol):
    """What a process brings: its description and the task that runs it."""

    @property
    def task(self) -> str:
        """``"package.module:function"``, run by the job engine with the validated inputs."""
        ...

    def describe(self) -> ProcessDescription: ...


@dataclass(frozen=True)
class Registered:
    description: ProcessDescription
    task: str

    @property
    def id(self) -> str:
        return self.description.id


class Registry:
    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self._processes: dict[str, Registered] = {}
        for endpoint in endpoints:
            self.add(endpoint)

    def add(self, endpoint: Endpoint) -> Registered:
        description = endpoint.describe()
        if not _TASK.fullmatch(endpoint.task):
            raise InvalidInput(
                f"process {description.id!r}: task {endpoint.task!r} is not 'module:function'"
            )
        if description.id in self._processes:
            raise InvalidInput(f"two endpoints describe the process {description.id!r}")
        registered = Registered(description, endpoint.task)
        self._processes[description.id] = registered
        return registered

    @classmethod
    def from_entry_points(cls) -> Registry:
        """Every endpoint of the group; one that cannot be loaded, or whose name is not its
        process id, stops the start with its name (a node does not serve a partial list)."""
        registry = cls(())
        for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
            if ep.name in registry._processes:  # one distribution seen twice on sys.path
                continue
            endpoint = cast("Endpoint", ep.load())
            registered = registry.add(endpoint)
            if registered.id != ep.name:
                raise InvalidInput(
                    f"entry point {ep.name!r} ({ep.value}) describes a process called "
                    f"{registered.id!r}"
                )
        log.debug("processes: %s", ", ".join(registry._processes))
        return registry

    def get(self, process_id: str) -> Registered:
        try:
            return self._processes[process_id]
        except KeyError:
            raise NoSuchProcess(f"no process {process_id!r} is offered here") from None

    def all(self) -> list[Registered]:
        return [self._processes[k] for k in sorted(self._processes)]
