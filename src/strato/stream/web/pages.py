"""The streams page (``/streams``): the sessions of this process's control server that
the caller may see (their own; every session for an administrator), each with its
listeners and targets, connections, bytes and rates, and a button that releases it.

Drawn on the server and readable without JavaScript (it reloads itself while sessions
are shown, and each release button is a form posting to ``/streams/{uid}/release``); its
script (``/static/stream.js``) keeps it live by polling ``GET /api/stream/sessions`` and
releases through ``POST /api/stream/sessions/{uid}/release``, drawing everything as text.
When the control server does not run in this process the page says so."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from strato import __version__
from strato.auth import Principal, Scope
from strato.capabilities import NavLink
from strato.http.security import Authenticator
from strato.settings import Settings
from strato.stream.api.routes import API, same_site_only
from strato.stream.api.views import LocalGateway, http_error, size, speed
from strato.stream.model.errors import StreamError

PAGE = "/streams"


def make_router(
    gateway: LocalGateway,
    auth: Authenticator,
    templates: Jinja2Templates,
    nav: list[NavLink],
    settings: Settings,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    streamer = Depends(auth.require(Scope.STREAM))

    def base(request: Request) -> str:
        # Links as the node's users reach it: the configured public URL, else the request's.
        return (settings.public_url or str(request.base_url)).rstrip("/")

    @router.get(PAGE)
    async def streams_page(request: Request, caller: Principal = streamer) -> HTMLResponse:
        root = base(request)
        context: dict[str, Any] = {
            "nav": nav,
            "settings": settings,
            "version": __version__,
            "doc": await gateway.snapshot(caller),
            "api": root + API,
            "page": root + PAGE,
            "size": size,
            "speed": speed,
        }
        return templates.TemplateResponse(request, "stream/sessions.html", context)

    @router.post(PAGE + "/{uid}/release")
    async def release_form(
        uid: str, request: Request, caller: Principal = streamer
    ) -> RedirectResponse:
        """The release button without JavaScript: release, then back to the page."""
        same_site_only(request)
        try:
            await gateway.release(caller, uid)
        except StreamError as exc:
            raise http_error(exc) from None
        return RedirectResponse(base(request) + PAGE, status_code=303)

    return router
