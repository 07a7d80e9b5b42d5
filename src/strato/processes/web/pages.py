"""HTML representations of the OGC API - Processes resources (conformance class
"html"): the same routes answer a page when the client asks for text/html or ``f=html``."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from strato import __version__
from strato.capabilities import NavLink
from strato.settings import Settings


class Pages:
    def __init__(self, templates: Jinja2Templates, nav: list[NavLink], settings: Settings) -> None:
        self.templates = templates
        self.nav = nav
        self.settings = settings

    def answer(
        self,
        request: Request,
        f: str | None,
        name: str,
        body: dict[str, Any],
        **context: Any,
    ) -> Response:
        """``body`` as JSON, or the page ``name`` showing it (as ``doc``) when HTML is
        asked for (:func:`wants_html`)."""
        if wants_html(request, f):
            return self.render(request, name, {"doc": body, **context})
        return JSONResponse(body)

    def render(self, request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
        return self.templates.TemplateResponse(
            request,
            f"processes/{name}",
            {"nav": self.nav, "settings": self.settings, "version": __version__, **context},
        )


def wants_html(request: Request, f: str | None) -> bool:
    """``f`` decides; without it, an Accept naming text/html (browsers). No Accept, or
    ``*/*`` as OWSLib and most clients send, is JSON."""
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept
