"""Put the demo collection in place: generate what is missing and register what is not
registered yet. Reached from `strato up` and `strato data demo` only, so the data service
itself knows nothing of the demo.
"""

from __future__ import annotations

from pathlib import Path

from strato.data.demo.collection import generate_demo
from strato.data.service import DataService
from strato.data.settings import DataSettings


def ensure_demo(
    service: DataService, root: Path | None = None, *, scale: str | None = None
) -> list[str]:
    """The ids of the demo datasets registered now (those already there are left alone)."""
    root = root or service.settings.data_dir / "demo"
    scale = scale or DataSettings.of(service.settings).demo_scale
    known = set(service.registry.ids())
    added = []
    for demo in generate_demo(root, scale=scale):  # type: ignore[arg-type]
        if demo.id in known:
            continue
        service.register(demo.id, [demo.glob], title=demo.title, owner="strato")
        added.append(demo.id)
    return added
