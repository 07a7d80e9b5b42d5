"""Serving the web app with uvicorn on a socket we bind ourselves.

Binding first means a busy port is reported plainly before anything is printed,
and ``--port 0`` gets a free port whose real number we can announce.
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from strato import heap
from strato.errors import Unavailable
from strato.settings import Settings


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve ``app`` until stopped; a capability that failed to start is raised
    (:class:`~strato.capabilities.CapabilityFailed`) once uvicorn has given up."""
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    # The settings the app was built with (strato.app.create_app keeps its Context).
    settings: Settings = app.state.context.settings
    heap.settle(settings.heap)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except SystemExit:  # how uvicorn ends a failed start
        failed = getattr(app.state, "failed", None)
        if failed is not None:
            raise failed from None
        raise
    failed = getattr(app.state, "failed", None)
    if failed is not None:
        raise failed
