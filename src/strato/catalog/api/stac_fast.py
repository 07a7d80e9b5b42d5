"""Fast path: the cheap way through the STAC API's GET read routes.

Each GET route reads its parameters through one request model
(:mod:`strato.catalog.api.stac_models`): an attrs class whose ``__init__`` FastAPI reads
as query parameters and validates through pydantic, one by one, on every request.
:class:`QueryModelRoute` is the same APIRoute (same dependant, so the same OpenAPI
operation) whose handler reads the query string itself when every value sent is one it
takes exactly as FastAPI would: text for a text parameter, plain digits for an integer
one. Anything else (a value to coerce or to reject, a parameter it does not know how to
read, a route with dependencies, dependency overrides) goes to FastAPI's own handler, so
answers and errors are FastAPI's to the byte (tests/catalog/test_stac_fast_path.py).

Off with ``catalog.stac_fast_path = false``. Why it is on (bench/RESULTS.md, "STAC GET
fast path off and on", 2026-12-04): inside the app it saves 0.31-0.41 ms of CPU per item
search, whose CPU is 1.3x with it off (bench/catalog_handler_cpu.py), and a client sees
searches 0.27-0.88 ms sooner, single items 0.21-0.36 ms (bench/catalog_paired.py, median
of paired differences); bench/catalog_search.py alone cannot tell on a shared machine,
whose run-to-run noise is larger.

It reads FastAPI's description of a route (``route.dependant``, its fields' ``field_info``),
public attributes without a documented contract: the test above fails, loudly, when a
FastAPI release changes them so that a route is no longer read here.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_INTEGER = re.compile(r"-?[0-9]{1,15}")

Kind = Literal["text", "integer", "other"]


def _kind(annotation: Any) -> Kind:
    """How a query parameter's value is read: ``str | None`` and ``int | None`` only."""
    if annotation in (str, int):
        return "text" if annotation is str else "integer"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1 and rest[0] in (str, int):
            return "text" if rest[0] is str else "integer"
    return "other"


@dataclass(frozen=True)
class _Param:
    name: str
    alias: str
    kind: Kind
    required: bool
    default: Any


def _params(fields: Sequence[Any]) -> list[_Param] | None:
    """The query fields as :class:`_Param`; None when one is beyond this reader."""
    found = []
    for field in fields:
        info = field.field_info
        required = info.is_required()
        # Read under one key, the alias, as FastAPI does when nothing adds another.
        if (
            info.metadata
            or getattr(info, "validation_alias", None) not in (None, field.alias)
            or getattr(field, "config", None)
            or getattr(info, "validate_default", False)
            or not (required or isinstance(field.default, str | int | type(None)))
        ):
            return None
        default = None if required else field.default
        found.append(_Param(field.name, field.alias, _kind(info.annotation), required, default))
    return found


def _plain(dependant: Dependant) -> bool:
    """No headers, cookies, body, security, response or background parameters."""
    return not (
        dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or getattr(dependant, "own_oauth_scopes", None)
    )


@dataclass(frozen=True)
class QueryReader:
    """Reads the arguments of an endpoint ``(request, [path params], model=Depends())``."""

    call: Callable[..., Awaitable[Any]]
    request_name: str
    path: tuple[_Param, ...]
    model: Callable[..., Any]
    model_name: str
    model_path: tuple[_Param, ...]
    query: tuple[_Param, ...]

    @classmethod
    def of(cls, dependant: Dependant) -> QueryReader | None:
        """The reader of an endpoint of that shape; None for any other endpoint."""
        call = dependant.call
        if (
            call is None
            or not inspect.iscoroutinefunction(call)
            or dependant.request_param_name is None
            or dependant.query_params
            or len(dependant.dependencies) != 1
            or not _plain(dependant)
        ):
            return None
        sub = dependant.dependencies[0]
        query = _params(sub.query_params)
        if (
            sub.call is None
            or sub.name is None
            or not inspect.isclass(sub.call)
            or sub.dependencies
            or not _plain(sub)
            or sub.request_param_name is not None
            or query is None
        ):
            return None
        own, model_path = _params(dependant.path_params), _params(sub.path_params)
        if own is None or model_path is None:
            return None
        if any(p.kind != "text" for p in (*own, *model_path)):
            return None
        return cls(
            call=call,
            request_name=dependant.request_param_name,
            path=tuple(own),
            model=sub.call,
            model_name=sub.name,
            model_path=tuple(model_path),
            query=tuple(query),
        )

    def arguments(self, request: Request) -> dict[str, Any] | None:
        """The endpoint's keyword arguments; None when FastAPI must read this query."""
        sent = request.query_params
        values: dict[str, Any] = {}
        for param in self.query:
            raw = sent.get(param.alias)
            if raw is None:
                if param.required:
                    return None
                values[param.name] = param.default
            elif param.kind == "text":
                values[param.name] = raw
            elif param.kind == "integer" and _INTEGER.fullmatch(raw):
                values[param.name] = int(raw)
            else:
                return None
        path = request.path_params
        for param in self.model_path:
            values[param.name] = path[param.alias]
        arguments: dict[str, Any] = {param.name: path[param.alias] for param in self.path}
        arguments[self.request_name] = request
        arguments[self.model_name] = self.model(**values)
        return arguments


class QueryModelRoute(APIRoute):
    """An APIRoute whose query is read directly when FastAPI would read it the same way.

    Only for a route added to an application's own router (``app.router``): FastAPI
    serves a route of an included router through a copy that carries the inclusion's
    dependencies, which this route would not see. Such a route has no dependency
    overrides provider of its own (the inclusion has it), and is then served by
    FastAPI's handler alone; so is a route with dependencies. Requests read here make
    none of FastAPI's optional telemetry spans (dependencies, endpoint), which strato
    does not turn on; the middleware's metrics are unchanged.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        overrides = self.dependency_overrides_provider
        if overrides is None or self.dependencies:
            return standard
        reader = QueryReader.of(self.dependant)
        if reader is None:
            return standard

        async def handler(request: Request) -> Response:
            if getattr(overrides, "dependency_overrides", None):
                return await standard(request)
            arguments = reader.arguments(request)
            if arguments is None:
                return await standard(request)
            answer = await reader.call(**arguments)
            if not isinstance(answer, Response):
                # strato's clients answer documents they have shaped themselves.
                raise TypeError(f"{self.path} answered {type(answer).__name__}, not a Response")
            return answer

        return handler


def read_route_class(fast: bool) -> type[APIRoute]:
    """The route class of the STAC API's GET read routes: fast (this module) or plain."""
    return QueryModelRoute if fast else APIRoute
