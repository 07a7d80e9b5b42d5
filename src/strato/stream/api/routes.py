"""``/api/stream``: the sessions of this process's control server as JSON, and release.

- ``GET /api/stream/sessions``: the gateway's state and the caller's sessions (every
  session for an administrator), each with its listeners, their targets, connections,
  bytes in and out and rates in bytes per second;
- ``GET /api/stream/sessions/{uid}``: one of them;
- ``POST /api/stream/sessions/{uid}/release``: what the gRPC ``release`` does.

Credentials as everywhere in strato's API (Bearer token, or Basic with a password or a
token), with scope ``stream``: the scope a token needs at the control server too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from strato.auth import Principal, Scope
from strato.errors import Forbidden
from strato.http.security import Authenticator
from strato.stream.api.views import LocalGateway, http_error
from strato.stream.model.errors import StreamError

API = "/api/stream"


def same_site_only(request: Request) -> None:
    """Refuse a release a page of another site makes the browser send: a form posted
    from elsewhere carries the user's Basic credentials too. Browsers say where a
    request comes from in Sec-Fetch-Site; clients that are no browser send none."""
    site = request.headers.get("sec-fetch-site")
    if site not in (None, "same-origin", "none"):
        raise Forbidden(f"a release sent from another site ({site}) is refused")


def make_router(gateway: LocalGateway, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix=API, tags=["stream"])
    streamer = Depends(auth.require(Scope.STREAM))

    @router.get("/sessions", summary="This gateway's sessions: the caller's own, or all for admin")
    async def sessions(caller: Principal = streamer) -> dict[str, Any]:
        return await gateway.snapshot(caller)

    @router.get("/sessions/{uid}", summary="One session with its counters and rates")
    async def session(uid: str, caller: Principal = streamer) -> dict[str, Any]:
        try:
            return await gateway.one(caller, uid)
        except StreamError as exc:
            raise http_error(exc) from None

    @router.post(
        "/sessions/{uid}/release",
        summary="Release a session: its forwarders stop, its ports go back to the pool",
    )
    async def release(uid: str, request: Request, caller: Principal = streamer) -> dict[str, Any]:
        same_site_only(request)
        try:
            return await gateway.release(caller, uid)
        except StreamError as exc:
            raise http_error(exc) from None

    return router
