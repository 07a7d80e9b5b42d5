"""Where dask computations run: threads in-process, or a distributed cluster."""

from __future__ import annotations

from typing import Any

import dask

from strato.errors import Unavailable
from strato.extras import optional_driver
from strato.settings import Settings

_clients: dict[str, Any] = {}


def configure_dask(settings: Settings) -> None:
    address = settings.dask_scheduler
    if not address:
        dask.config.set(scheduler="threads")
        return
    if address in _clients:
        return
    with optional_driver():
        from distributed import Client
    try:
        # set_as_default makes every dask computation of this process use the cluster.
        _clients[address] = Client(address, set_as_default=True, timeout=10)
    except OSError as exc:
        raise Unavailable(f"cannot reach the dask scheduler at {address}: {exc}") from None


def release_dask() -> None:
    """Close cluster clients and go back to threads (tests, shutdown)."""
    for client in _clients.values():
        client.close()
    _clients.clear()
    dask.config.set(scheduler="threads")
