"""Where the OGC API - Processes lives, as links name it."""

from __future__ import annotations

from starlette.requests import Request

PREFIX = "/processes-api"


def api_url(public_url: str | None, request: Request) -> str:
    """The API's base URL (its landing page): the configured public URL, else the
    request's own."""
    base = public_url or str(request.base_url)
    return base.rstrip("/") + PREFIX
