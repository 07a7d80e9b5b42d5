"""The one place a data server is made from settings: ``backend`` names it, the state
directory holds its per-session files and the markers its reap finds."""

from __future__ import annotations

from pathlib import Path

from strato.errors import InvalidInput
from strato.stream.dataserver.base import DataServer

BACKENDS = ("builtin", "haproxy", "stunnel")


def create(backend: str, state_dir: Path, warm_forwarders: int = 1) -> DataServer:
    """``warm_forwarders``: builtin forwarders kept started ahead of their sessions."""
    if backend == "builtin":
        from strato.stream.dataserver.builtin import BuiltinDataServer

        return BuiltinDataServer(state_dir / "builtin", spares=warm_forwarders)
    if backend == "haproxy":
        from strato.stream.dataserver.haproxy import HAProxyDataServer

        return HAProxyDataServer(state_dir / "haproxy")
    if backend == "stunnel":
        from strato.stream.dataserver.stunnel import StunnelDataServer

        return StunnelDataServer(state_dir / "stunnel")
    raise InvalidInput(f"stream.backend {backend!r}: expected one of {', '.join(BACKENDS)}")
