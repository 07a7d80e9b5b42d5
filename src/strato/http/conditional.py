"""Validators and conditional requests: ETag, Last-Modified, If-None-Match -> 304."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.utils import formatdate

from fastapi import Request
from fastapi.responses import Response


def make_etag(*parts: str) -> str:
    """The entity tag of what ``parts`` determine: every ETag strato sends is made here."""
    return '"' + hashlib.blake2b("\0".join(parts).encode(), digest_size=12).hexdigest() + '"'


def http_date(timestamp: float) -> str:
    """``timestamp`` as an HTTP date (``Last-Modified``)."""
    return formatdate(timestamp, usegmt=True)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def not_modified(request: Request, etag: str) -> bool:
    return _matches(request.headers.get("if-none-match"), etag)


def validators(etag: str, last_modified: float | None, cache_control: str) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if last_modified:
        headers["Last-Modified"] = http_date(last_modified)
    return headers


def conditional(
    request: Request,
    body: Callable[[], bytes],
    *,
    etag: str,
    last_modified: float | None,
    cache_control: str,
    media_type: str,
) -> Response:
    """A bodiless 304 when the client's copy is current (the body is then never made),
    else a 200 with validators."""
    headers = validators(etag, last_modified, cache_control)
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body(), media_type=media_type, headers=headers)
