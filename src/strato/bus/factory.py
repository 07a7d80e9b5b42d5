"""Which bus a URL names (``STRATO_BUS_URL``): the backend declared for its scheme in the
``strato.buses`` entry points (:mod:`strato.bus.urls`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from strato.bus.base import Bus
from strato.bus.urls import BusURL, backend, forms, shown
from strato.errors import InvalidInput
from strato.redact import mask_url

if TYPE_CHECKING:
    from strato.settings import Settings


def open_bus(url: str | None, data_dir: Path) -> Bus:
    """The bus ``url`` names, not started yet (use ``async with``); no URL is the
    embedded bus in ``data_dir``."""
    if url is None or not url.strip():
        from strato.bus.embedded import EmbeddedBus

        return EmbeddedBus(Path(data_dir) / "bus.db")
    parsed = BusURL.parse(url.strip())
    cls = backend(parsed.scheme)
    if cls is None:
        raise InvalidInput(f"unsupported bus URL {shown(parsed.url)}; use one of: {forms()}")
    return cls.from_url(parsed, Path(data_dir))


def bus_shown(settings: Settings) -> str:
    """The bus of ``settings`` as users may see it: its URL with credentials masked."""
    url = settings.bus.url
    if url is None or not url.strip():
        return f"embedded {Path(settings.data_dir) / 'bus.db'}"
    return mask_url(url.strip())
