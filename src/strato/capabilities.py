"""How subpackages plug into the platform.

Each capability contributes routers to the web app, a command group to the CLI
and a link on the landing page, through one object listed in ``CAPABILITIES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator


@dataclass(frozen=True)
class NavLink:
    title: str
    href: str
    description: str


@dataclass(frozen=True)
class ReadinessCheck:
    """One thing a node needs to serve, probed by ``/readyz``: ``probe`` returns None
    when it is there, else what is wrong in one line (no secrets: the probe is public)."""

    name: str
    probe: Callable[[], Awaitable[str | None]]


class Capability(Protocol):
    name: str

    def nav(self) -> list[NavLink]: ...

    def install(self, app: FastAPI, ctx: Context, auth: Authenticator) -> None: ...

    def register_cli(self, app: typer.Typer) -> None: ...

    def on_start(self, ctx: Context) -> None:
        """Work `strato up` starts with the platform (background threads or processes)."""
        ...

    def lifespan(self, app: FastAPI) -> AbstractAsyncContextManager[None]:
        """What runs while the web app serves (connections, background tasks), and its end."""
        ...

    def readiness(self, app: FastAPI, ctx: Context) -> list[ReadinessCheck]:
        """What this capability needs beyond the core's checks (database reachable,
        migrated and writable, data directory writable), e.g. its bus connection."""
        ...


# Module paths, each exposing ``capability``; imported on demand so that a broken
# optional capability cannot stop the platform from starting.
CAPABILITIES: tuple[str, ...] = ("strato.data.capability", "strato.catalog.capability")


def load_capabilities() -> list[Capability]:
    return [import_module(path).capability for path in CAPABILITIES]
