"""Database and storage faults as 503 problems, and one more try for reads that lost
their database connection.

A database that is down, read-only or locked, or a data directory that cannot be
written, is not a bug of the request: clients hear 503 with Retry-After (the status
comes from the one table in :mod:`strato.http.problems`). A GET or HEAD whose pooled
connection was cut under it (PostgreSQL restarted, ``pg_terminate_backend``, a proxy's
idle timeout) runs once more before failing: the pool's pre-ping only checks a
connection when it is checked out, not while a statement runs on it.

Pure ASGI, around the routes and the capabilities' own middleware, inside the request
context middleware so that these answers carry request ids and count in the metrics.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.db import fault_of
from strato.http.problems import domain_problem

log = logging.getLogger("strato.http")

_IDEMPOTENT = frozenset({"GET", "HEAD"})


class StorageFaultMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        retries = 1 if scope["method"] in _IDEMPOTENT else 0
        received: list[Message] = []
        while True:
            started = False

            async def tracked(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            try:
                await self.app(scope, _replaying(receive, received), tracked)
                return
            except Exception as exc:
                fault = fault_of(exc)
                if fault is None or started:
                    raise
                if fault.lost_connection and retries > 0:
                    retries -= 1
                    log.info(
                        "%s %s: %s; trying once more", scope["method"], scope["path"], fault.cause
                    )
                    continue
                log.warning("%s %s answered 503: %s", scope["method"], scope["path"], fault.cause)
                response = domain_problem(fault.error, instance=scope["path"])
                await response(scope, receive, send)
                return


def _replaying(receive: Receive, received: list[Message]) -> Receive:
    """``receive`` that hands a second run of the app what the first one was given."""
    replay = list(received)

    async def wrapped() -> Message:
        if replay:
            return replay.pop(0)
        message = await receive()
        received.append(message)
        return message

    return wrapped
