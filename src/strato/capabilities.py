"""How capabilities plug into the platform.

A capability is a package that declares one object in the entry point group
``strato.capabilities`` of its distribution::

    [project.entry-points."strato.capabilities"]
    data = "strato.data.capability:capability"

The entry point's name is the capability's name. Through that object it brings its
settings section, its migrations, routers and pages, a CLI group and background
work; everything shared (database, bus) it takes from the :class:`~strato.context.Context`.

A capability is switched off with ``capabilities.disabled`` (``STRATO_CAPABILITIES_DISABLED
=catalog``): nothing of it is installed, started or migrated, though its settings section
is still read (so a configuration file stays valid) and its commands stay listed.

A capability that fails to start, at any step (its import, ``install``, ``lifespan``,
``on_start``), stops the platform from starting: the error is
:class:`CapabilityFailed`, one line naming the capability and the cause, which the
command line prints without a traceback. There is no half-started platform that serves
without a capability it was told to run; switch it off to run without it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, cast

from strato.errors import InvalidInput, StratoError, Unavailable

if TYPE_CHECKING:
    import typer
    from fastapi import FastAPI

    from strato.context import Context
    from strato.http.security import Authenticator
    from strato.settings import Section, Settings

GROUP = "strato.capabilities"


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
    """What a capability's entry point object provides (see the module's docstring for
    what happens when one fails to start)."""

    name: str

    @property
    def after(self) -> tuple[str, ...]:
        """Capabilities this one is installed and started after, when they are there
        (it may use what they provide through the Context). Order only: a capability
        named here may be absent or switched off."""
        ...

    @property
    def settings_section(self) -> type[Section] | None:
        """Its settings section; its ``key`` is the capability's name."""
        ...

    @property
    def migrations(self) -> str | None:
        """Package of its alembic revisions (its own history and version table)."""
        ...

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


class CapabilityFailed(Unavailable):
    """A capability that was to run could not start."""

    code = "capability-failed"

    def __init__(self, name: str, cause: BaseException | str) -> None:
        self.capability = name
        reason = cause if isinstance(cause, str) else describe(cause)
        super().__init__(f"capability {name!r} failed to start: {reason}")


def describe(exc: BaseException) -> str:
    """``exc`` in one line: its message (a StratoError's detail), else its type."""
    text = exc.detail if isinstance(exc, StratoError) else str(exc)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@contextmanager
def starting(name: str) -> Iterator[None]:
    """Any failure inside becomes :class:`CapabilityFailed` naming capability ``name``."""
    try:
        yield
    except CapabilityFailed:
        raise
    except Exception as exc:
        raise CapabilityFailed(name, exc) from exc


@dataclass(frozen=True)
class Installed:
    """An entry point of the group: its capability, or why it could not be loaded."""

    name: str
    capability: Capability | None
    error: str | None = None


@cache
def installed() -> tuple[Installed, ...]:
    """Every capability installed, ordered so each comes after those it names in ``after``
    (else by name). Read once; ``installed.cache_clear()`` reads the entry points again."""
    found: dict[str, Installed] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        if ep.name in found:  # the same distribution seen twice on sys.path
            continue
        try:
            cap = cast("Capability", ep.load())
        except Exception as exc:
            found[ep.name] = Installed(ep.name, None, describe(exc))
            continue
        if getattr(cap, "name", None) != ep.name:
            error = f"entry point {ep.value} names a capability called {cap.name!r}"
            found[ep.name] = Installed(ep.name, None, error)
            continue
        found[ep.name] = Installed(ep.name, cap)
    return tuple(_ordered(found))


def _ordered(found: dict[str, Installed]) -> Iterator[Installed]:
    placed: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> Iterator[Installed]:
        if name in placed or name not in found:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise InvalidInput(f"capabilities are ordered in a circle: {cycle}")
        visiting.append(name)
        cap = found[name].capability
        for before in sorted(cap.after if cap is not None else ()):
            yield from visit(before)
        visiting.pop()
        placed.add(name)
        yield found[name]

    for name in found:
        yield from visit(name)


def capability_sections() -> dict[str, type[Section]]:
    """The settings section of each installed capability, by its key. One that cannot be
    loaded keeps a section taking anything, so that switching it off in the file works."""
    from strato.settings import Section

    sections: dict[str, type[Section]] = {}
    for entry in installed():
        if entry.capability is None:
            sections[entry.name] = Section
            continue
        section = entry.capability.settings_section
        if section is None:
            continue
        if section.key in sections:
            raise InvalidInput(f"two capabilities bring the settings section {section.key!r}")
        sections[section.key] = section
    return sections


def load_capabilities(settings: Settings) -> list[Capability]:
    """The capabilities ``settings`` switch on, in order; one that could not be loaded
    stops the start (:class:`CapabilityFailed`) unless it is switched off."""
    entries = installed()
    disabled = set(settings.capabilities.disabled)
    unknown = disabled - {entry.name for entry in entries}
    if unknown:
        known = ", ".join(entry.name for entry in entries) or "none"
        raise InvalidInput(
            f"capabilities.disabled names {', '.join(sorted(unknown))}, which is not "
            f"installed (installed: {known})"
        )
    chosen: list[Capability] = []
    for entry in entries:
        if entry.name in disabled:
            continue
        if entry.capability is None:
            raise CapabilityFailed(entry.name, entry.error or "it cannot be loaded")
        chosen.append(entry.capability)
    return chosen


class Periodic(Protocol):
    """Work `strato scheduler` runs beside the periodic jobs, in its own thread, from its
    start to its stop (the pipelines' sweep for runs nobody drives, on Celery)."""

    def start(self) -> None: ...

    def close(self) -> None: ...


def periodic_work(settings: Settings, ctx: Context) -> list[Periodic]:
    """What the capabilities ``settings`` switch on ask `strato scheduler` to run: each
    capability object may have ``periodic(ctx) -> list[Periodic]`` (optional: most have
    nothing periodic of their own)."""
    work: list[Periodic] = []
    for capability in load_capabilities(settings):
        make = getattr(capability, "periodic", None)
        if make is not None:
            work.extend(make(ctx))
    return work


def loadable_capabilities() -> list[Capability]:
    """Every installed capability that could be loaded, switched on or not: the command
    line lists their commands before it has read any settings."""
    return [entry.capability for entry in installed() if entry.capability is not None]
