"""Bus URLs (``STRATO_BUS_URL``) and the backends that open them.

A backend is a :class:`~strato.bus.base.Bus` subclass with a ``from_url`` class method,
declared in the ``strato.buses`` entry point group under its URL scheme::

    [project.entry-points."strato.buses"]
    redis = "strato_redis_bus:RedisBus"

Only the backend a URL names is imported, so a missing optional driver (NATS, Kafka)
matters only to whoever configures that bus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from strato.errors import InvalidInput
from strato.extras import optional_driver
from strato.redact import mask_url

if TYPE_CHECKING:
    from strato.bus.base import Bus

GROUP = "strato.buses"
DEFAULT_FORM = "nothing (an embedded SQLite log bus.db in the data directory)"


@dataclass(frozen=True)
class BusURL:
    """A bus URL taken apart: ``scheme://location?query``."""

    url: str
    scheme: str
    location: str
    query: str

    @classmethod
    def parse(cls, url: str) -> BusURL:
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme:
            raise InvalidInput(f"unsupported bus URL {shown(url)}; use one of: {forms()}")
        location, _, query = rest.partition("?")
        return cls(url, scheme.lower(), location, query)

    def invalid(self, what: str) -> InvalidInput:
        """The error for this URL when it ``what`` (e.g. "names no file")."""
        return InvalidInput(f"bus URL {shown(self.url)} {what}; use {forms()}")

    def hosts(self) -> list[str]:
        """The ``host:port`` list of a server URL (``scheme://h1:p1,h2:p2/?...``)."""
        location = self.location
        if not location or location.startswith("/") or "/" in location.rstrip("/"):
            raise self.invalid("names no host:port")
        return location.rstrip("/").split(",")

    def options(self, allowed: Mapping[str, Callable[[str], Any]]) -> dict[str, Any]:
        """The query's options, each converted by its type in ``allowed``; another name or
        a value its type refuses is an error naming it."""
        options: dict[str, Any] = {}
        for name, value in parse_qsl(self.query, keep_blank_values=True):
            if name not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise InvalidInput(
                    f"bus URL {shown(self.url)}: unknown option {name!r} (known options: {known})"
                )
            try:
                options[name] = allowed[name](value)
            except ValueError:
                raise InvalidInput(
                    f"bus URL {shown(self.url)}: option {name}={value!r} is not valid"
                ) from None
        return options


def backend(scheme: str) -> type[Bus] | None:
    """The backend declared for URL scheme ``scheme``, imported; None when none is."""
    from strato.bus.base import Bus

    found = [ep for ep in entry_points(group=GROUP) if ep.name == scheme]
    if len({ep.value for ep in found}) > 1:
        raise RuntimeError(
            f"bus scheme {scheme!r} is declared more than once in entry points {GROUP!r}: "
            + ", ".join(sorted({ep.value for ep in found}))
        )
    if not found:
        return None
    with optional_driver():
        cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Bus)):
        raise RuntimeError(f"entry point {scheme} = {found[0].value} is not a Bus class")
    return cls


def forms() -> str:
    """How each declared backend's URL is written, for error messages."""
    described = [DEFAULT_FORM]
    for scheme in sorted({ep.name for ep in entry_points(group=GROUP)}):
        try:
            cls = backend(scheme)
        except Exception:  # a backend that cannot load is still a scheme to name
            cls = None
        described.append(cls.url_form if cls is not None and cls.url_form else f"{scheme}://...")
    return ", ".join(described)


def shown(url: str) -> str:
    return repr(mask_url(url))
