"""Which bus a URL names (``STRATO_BUS_URL``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from strato.bus.base import Bus
from strato.errors import InvalidInput
from strato.redact import mask_url

if TYPE_CHECKING:
    from strato.settings import Settings

FORMS = (
    "nothing (an embedded SQLite log bus.db in the data directory), "
    "sqlite:///path/to/bus.db (relative paths are in the data directory), "
    "nats://host:4222[?stream=STRATO&prefix=strato&ack_wait=30], "
    "kafka://host:9092[,host2:9092][?partitions=3&replication_factor=1&session_timeout_ms=...]"
)

# Options a URL query may set, with their types; each goes to the backend's constructor.
EMBEDDED_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "lease_seconds": float,
    "max_poll_interval": float,
}
NATS_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "stream": str,
    "prefix": str,
    "ack_wait": float,
    "max_ack_pending": int,
    "connect_timeout": float,
}
KAFKA_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "client_id": str,
    "partitions": int,
    "replication_factor": int,
    "session_timeout_ms": int,
    "heartbeat_interval_ms": int,
    "metadata_max_age_ms": int,
    "request_timeout_ms": int,
}


def open_bus(url: str | None, data_dir: Path) -> Bus:
    """The bus ``url`` names, not started yet (use ``async with``)."""
    if url is None or not url.strip():
        from strato.bus.embedded import EmbeddedBus

        return EmbeddedBus(Path(data_dir) / "bus.db")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("sqlite", "nats", "kafka"):
        raise InvalidInput(f"unsupported bus URL {_shown(url)}; use one of: {FORMS}")
    location, _, query = rest.partition("?")
    if scheme == "sqlite":
        from strato.bus.embedded import EmbeddedBus

        # sqlite:///relative and sqlite:////absolute, as in SQLAlchemy URLs.
        if not location.startswith("/") or location == "/":
            raise InvalidInput(f"bus URL {_shown(url)} names no file; use {FORMS}")
        path = Path(location[1:])
        if not path.is_absolute():
            path = Path(data_dir) / path
        return EmbeddedBus(path, **_options(query, EMBEDDED_OPTIONS, url))
    if not location or location.startswith("/") or "/" in location.rstrip("/"):
        raise InvalidInput(f"bus URL {_shown(url)} names no host:port; use {FORMS}")
    location = location.rstrip("/")
    if scheme == "nats":
        from strato.bus.nats import NatsBus

        servers = ",".join(f"nats://{host}" for host in location.split(","))
        return NatsBus(servers, **_options(query, NATS_OPTIONS, url))
    from strato.bus.kafka import KafkaBus

    return KafkaBus(location, **_options(query, KAFKA_OPTIONS, url))


def _options(query: str, allowed: Mapping[str, Callable[[str], Any]], url: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidInput(
                f"bus URL {_shown(url)}: unknown option {name!r} (known options: {known})"
            )
        try:
            options[name] = allowed[name](value)
        except ValueError:
            raise InvalidInput(
                f"bus URL {_shown(url)}: option {name}={value!r} is not valid"
            ) from None
    return options


def bus_shown(settings: Settings) -> str:
    """The bus of ``settings`` as users may see it: its URL with credentials masked."""
    url = settings.bus.url
    if url is None or not url.strip():
        return f"embedded {Path(settings.data_dir) / 'bus.db'}"
    return mask_url(url.strip())


def _shown(url: str) -> str:
    return repr(mask_url(url))
