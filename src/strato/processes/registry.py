"""The processes a node offers, each declared by an :class:`Endpoint`.

An endpoint describes its process and names the task the job engine runs for it (a
module-level ``"module:function"``, see strato.job_engine). Endpoints are found through
the entry point group ``strato.processes``, the entry point's name being the process id,
so a third party adds a process by installing a distribution::

    [project.entry-points."strato.processes"]
    my-process = "my_package.processes:endpoint"

Ids starting with a configured provider's prefix are that provider's
(:mod:`strato.processes.providers`): described by it, run by a job that forwards them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, cast

from strato.errors import InvalidInput
from strato.processes.model.description import ProcessDescription
from strato.processes.model.errors import NoSuchProcess

if TYPE_CHECKING:
    from strato.processes.providers.base import Providers

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
    # A remote process: its provider's prefix and its id there.
    route: tuple[str, str] | None = None

    @property
    def id(self) -> str:
        return self.description.id


class Registry:
    def __init__(self, endpoints: Iterable[Endpoint], providers: Providers | None = None) -> None:
        self._processes: dict[str, Registered] = {}
        self.providers = providers
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
    def from_entry_points(cls, providers: Providers | None = None) -> Registry:
        """Every endpoint of the group; one that cannot be loaded, or whose name is not its
        process id, stops the start with its name (a node does not serve a partial list)."""
        registry = cls((), providers)
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

    def local(self, process_id: str) -> Registered | None:
        """The process if this node runs it itself (no provider asked: never blocks)."""
        return self._processes.get(process_id)

    def get(self, process_id: str) -> Registered:
        """The process; a remote one is asked of its provider (blocking: call it from a
        thread), NoSuchProcess if neither has it."""
        found = self._processes.get(process_id)
        if found is not None:
            return found
        routed = self.providers.route(process_id) if self.providers is not None else None
        if routed is None:
            raise NoSuchProcess(f"no process {process_id!r} is offered here")
        from strato.processes.providers.forward import TASK

        provider, remote_id = routed
        description = self.providers.describe(provider, remote_id)  # type: ignore[union-attr]
        return Registered(description, TASK, (provider.settings.prefix, remote_id))

    def all(self) -> list[Registered]:
        """This node's processes, then the remote ones under their prefixes."""
        local = [self._processes[k] for k in sorted(self._processes)]
        if self.providers is None:
            return local
        from strato.processes.providers.forward import TASK

        remote = []
        for description in self.providers.all():
            routed = self.providers.route(description.id)
            if routed is None or description.id in self._processes:
                continue  # a local process keeps its id
            provider, remote_id = routed
            remote.append(Registered(description, TASK, (provider.settings.prefix, remote_id)))
        return local + remote
