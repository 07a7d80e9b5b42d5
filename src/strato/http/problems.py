"""The one table from domain errors to HTTP, and RFC 9457 problem responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from strato import errors
from strato.logs import request_id_var

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[errors.StratoError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
    errors.BadGateway: 502,
    errors.GatewayTimeout: 504,
}

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

AUTH_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strato", Basic realm="strato"'}


def status_of(exc: errors.StratoError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(
    status: int,
    detail: str,
    *,
    instance: str,
    code: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    type_uri: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_uri or (f"urn:strato:problem:{code}" if code else "about:blank"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    body.update({k: v for k, v in extra.items() if v})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def domain_problem(exc: errors.StratoError, *, instance: str, **extra: Any) -> JSONResponse:
    """The problem response of a domain error, its status from the one table."""
    status = status_of(exc)
    headers = dict(AUTH_CHALLENGE) if status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problem(
        status,
        exc.detail,
        instance=instance,
        code=exc.code,
        title=exc.title,
        headers=headers or None,
        type_uri=exc.type_uri,
        errors=exc.errors,
        **extra,
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.StratoError)
        return domain_problem(exc, instance=request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in found[:5])
        return problem(422, detail, instance=request.url.path, code="validation", errors=found)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        if isinstance(exc.__cause__, RecursionError):
            # FastAPI's body parsing says only "There was an error parsing the body".
            detail = (
                "the JSON body nests deeper than the server reads (about 1,000 levels of "
                "arrays and objects)"
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.update(AUTH_CHALLENGE)
        return problem(exc.status_code, detail, instance=request.url.path, headers=headers)

    app.add_exception_handler(errors.StratoError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
