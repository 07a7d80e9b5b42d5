"""Request context: a request id on every response and log line, metrics, access log,
and the last line of defence that turns an unexpected exception into a problem response."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strato.errors import PayloadTooLarge
from strato.http.metrics import Metrics
from strato.http.problems import domain_problem
from strato.logs import request_id_var

log = logging.getLogger("strato.http")
access_log = logging.getLogger("strato.access")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Mounted apps (static files) have no route object; group them by mount point.
    root = scope.get("root_path", "") or ""
    app_root = scope.get("app_root_path", "")
    return (root[len(app_root) :] or "") + "/*" if root and root != app_root else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, access: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _CLIENT_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = False
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            status = 500
            if not started:
                await _internal_error(send, scope["path"], request_id)
        finally:
            elapsed = time.perf_counter() - t0
            route = _route_of(scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            if self.access:
                access_log.info(
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000
                )
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _internal_error(send: Send, path: str, request_id: str) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Internal server error",
        "status": 500,
        "detail": f"the server failed to answer; quote request id {request_id} when reporting it",
        "instance": path,
        "request_id": request_id,
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyTooLarge(HTTPException):
    """Raised into the app by :class:`BodyLimitMiddleware`'s ``receive``: an HTTP error,
    so FastAPI's body parsing passes it on instead of calling it a malformed body."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return (
        f"the request body is larger than {limit:,} bytes, the most this server accepts "
        "(setting max_body_bytes)"
    )


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with a 413 problem.

    A declared ``Content-Length`` beyond the limit is answered before anything is read;
    a body without one (chunked) is counted while the app reads it, and the read that
    crosses the limit raises :class:`BodyTooLarge`. Whatever the app then answers is
    replaced by the 413, so the answer is the same however a route reads its body.
    (Starlette's own limit answers ``text/plain`` without saying the limit, and replaces
    even a JSON problem with that.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        exceeded = False
        answered = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def unless_exceeded(message: Message) -> None:
            nonlocal answered
            if exceeded and not answered:
                return  # the app's answer to a body it could not read: the 413 replaces it
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, counted, unless_exceeded)
        except BodyTooLarge:
            if answered:
                raise
        except Exception:
            if not exceeded or answered:
                raise
        if exceeded and not answered:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = domain_problem(
            PayloadTooLarge(_too_large(self.max_bytes)), instance=scope["path"]
        )
        # The rest of the body is not read: the connection is closed after the answer.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
