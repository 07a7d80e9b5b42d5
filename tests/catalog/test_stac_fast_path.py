"""The STAC API's GET fast path (strato.catalog.api.stac_fast) answers what FastAPI's own
handling answers: two servers over one catalog, one with ``catalog.stac_fast_path`` on
and one with it off, asked the same GET requests, compared byte for byte.

The requests cover every GET route, each kind of parameter, and the values the fast path
leaves to FastAPI (a number to coerce, one to refuse), errors included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute

from strato.app import create_app
from strato.catalog.api.stac_fast import QueryModelRoute, QueryReader
from strato.catalog.demo.generator import generate_items
from strato.context import Context
from strato.settings import Settings
from tests.catalog.holding import catalog_holding
from tests.conftest import ThreadedServer

# What differs from one response to the next whatever the path.
UNCOMPARED = {"date", "server"}
# Problems quote the request id: the same one, given, on both.
ID = {"X-Request-Id": "fastpathcompare"}
FAST = "STRATO_CATALOG_STAC_FAST_PATH"


@dataclass
class Pair:
    fast: httpx.Client
    plain: httpx.Client
    fast_app: FastAPI
    plain_app: FastAPI
    items: list[dict[str, Any]]


def _settings(tmp: Any, fast: bool) -> Settings:
    env = {
        "STRATO_DATA_DIR": str(tmp),
        "STRATO_LOG_ACCESS": "false",
        # Links name the node by its public URL: the same for both servers.
        "STRATO_PUBLIC_URL": "http://node.example",
        "STRATO_CATALOG_CONSUME": "false",
        "STRATO_CATALOG_MAX_LIMIT": "20",
        FAST: "true" if fast else "false",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        return Settings()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("stac-fast") / "data"
    fast, plain = _settings(tmp, True), _settings(tmp, False)
    items = list(generate_items(12, seed=3)) + list(generate_items(4, project="CORDEX", seed=3))
    ctx = catalog_holding(fast, items)
    # A context of its own: the capabilities read the settings of theirs.
    plain_ctx = Context.open(plain)
    fast_app, plain_app = create_app(fast, context=ctx), create_app(plain, context=plain_ctx)
    with (
        ThreadedServer(fast_app) as a,
        ThreadedServer(plain_app) as b,
        httpx.Client(base_url=a.url, timeout=30) as on,
        httpx.Client(base_url=b.url, timeout=30) as off,
    ):
        yield Pair(on, off, fast_app, plain_app, items)
    plain_ctx.close()
    ctx.close()


def _requests(items: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, Any]]]]:
    one = items[0]
    cid, iid = one["collection"], one["id"]
    source = one["properties"]["cmip6:source_id"]
    cql2 = f"\"cmip6:source_id\" = '{source}'"
    search: list[list[tuple[str, Any]]] = [
        [],
        [("limit", "3")],
        [("limit", "3"), ("limit", "5")],
        [("limit", "+4")],
        [("limit", "4.0")],
        [("limit", "ten")],
        [("limit", "0")],
        [("limit", "999")],
        [("collections", "CMIP6,CORDEX"), ("limit", "2")],
        [("collections", "")],
        [("ids", f"{iid},{items[1]['id']}")],
        [("bbox", "-180,-90,180,90")],
        [("bbox", "1,2,3")],
        [("datetime", "1850-01-01T00:00:00Z/..")],
        [("datetime", "yesterday")],
        [("intersects", '{"type": "Point", "coordinates": [10, 10]}')],
        [("filter", cql2)],
        [("filter", cql2), ("filter-lang", "cql2-text")],
        [
            ("filter", '{"op": "=", "args": [{"property": "id"}, "x"]}'),
            ("filter-lang", "cql2-json"),
        ],
        [("filter", cql2), ("filter-lang", "sql")],
        [("filter", "this is not cql2")],
        [("filter-crs", "EPSG:4326"), ("filter", cql2)],
        [("sortby", "-properties.datetime,+id")],
        [("sortby", " id")],
        [("fields", "-assets,properties.title")],
        [("fields", "")],
        [("query", f'{{"cmip6:source_id": {{"eq": "{source}"}}}}')],
        [("query", "[1]")],
        [("q", "tas,historical")],
        [("token", "not-a-token")],
        [("unknown", "ignored"), ("limit", "1")],
        [("limit", "1"), ("sortby", "id"), ("datetime", "../2100-01-01T00:00:00Z")],
    ]
    out: list[tuple[str, list[tuple[str, Any]]]] = [
        ("/stac/", []),
        ("/stac/?limit=ten", []),
        ("/stac/conformance", []),
        ("/stac/collections", []),
        ("/stac/collections", [("limit", "1"), ("offset", "1")]),
        ("/stac/collections", [("offset", "-1")]),
        ("/stac/collections", [("offset", "x")]),
        ("/stac/collections", [("q", "CMIP6")]),
        ("/stac/collections", [("bbox", "0,0,1,1"), ("datetime", "2000-01-01T00:00:00Z")]),
        (f"/stac/collections/{cid}", []),
        ("/stac/collections/nowhere", []),
        (f"/stac/collections/{cid}/items/{iid}", []),
        (f"/stac/collections/{cid}/items/nothing", []),
        ("/stac/queryables", []),
        (f"/stac/collections/{cid}/queryables", []),
        ("/stac/aggregations", []),
        (f"/stac/collections/{cid}/aggregations", []),
        ("/stac/aggregate", [("aggregations", "total_count,cmip6:source_id")]),
        ("/stac/aggregate", [("aggregations", "no-such-facet")]),
        (f"/stac/collections/{cid}/aggregate", [("aggregations", "total_count"), ("q", "x")]),
    ]
    for query in search:
        out.append(("/stac/search", query))
        out.append((f"/stac/collections/{cid}/items", query))
    return out


def _compared(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in UNCOMPARED}
    return response.status_code, headers, response.content


def test_the_fast_path_answers_what_fastapi_answers(pair: Pair) -> None:
    asked = _requests(pair.items)
    statuses = set()
    for path, query in asked:
        fast = pair.fast.get(path, params=query, headers=ID)
        plain = pair.plain.get(path, params=query, headers=ID)
        assert _compared(fast) == _compared(plain), (path, query)
        statuses.add(fast.status_code)
    # The requests reach the answers and the errors of every kind.
    assert {200, 400, 404, 422} <= statuses
    # Following the pages the same way: the next link of a page, on both.
    for client in (pair.fast, pair.plain):
        first = client.get("/stac/search", params={"limit": "2"}).json()
        href = next(lk["href"] for lk in first["links"] if lk["rel"] == "next")
        token = httpx.URL(href).params["token"]
        pages = [
            _compared(c.get("/stac/search", params={"limit": "2", "token": token}, headers=ID))
            for c in (pair.fast, pair.plain)
        ]
        assert pages[0] == pages[1]


def _get_routes(app: FastAPI) -> list[APIRoute]:
    return [
        r
        for r in app.routes
        if isinstance(r, APIRoute)
        and r.path.startswith("/stac/")
        and r.methods == {"GET"}
        and r.path != "/stac/api"
    ]


def test_the_setting_chooses_the_path_and_every_get_route_is_read_fast(pair: Pair) -> None:
    fast, plain = _get_routes(pair.fast_app), _get_routes(pair.plain_app)
    assert len(fast) == len(plain) == 13
    assert not any(isinstance(r, QueryModelRoute) for r in plain)
    for route in fast:
        assert isinstance(route, QueryModelRoute), route.path
        # Breaks loudly when FastAPI changes what a route's dependant says of its
        # parameters: the fast path would otherwise quietly stop being taken.
        assert QueryReader.of(route.dependant) is not None, route.path
        assert "QueryModelRoute" in route.get_route_handler().__qualname__, route.path


def test_the_setting_is_on_unless_turned_off() -> None:
    assert os.environ.get(FAST) is None
    assert Settings().model_dump()["catalog"]["stac_fast_path"] is True


class Asked:
    def __init__(self, text: str | None = None) -> None:
        self.text = text


async def echo(request: Request, asked: Asked = Depends()) -> Response:
    return Response(asked.text or "")


def test_an_included_routers_dependencies_are_never_gone_around() -> None:
    """FastAPI serves an included router's route through a copy carrying the inclusion's
    dependencies; the fast path does not see them and must leave such a route alone."""

    def refuse() -> None:
        raise HTTPException(403, "no")

    router = APIRouter(route_class=QueryModelRoute)
    router.add_api_route("/echo", echo, methods=["GET"])
    app = FastAPI()
    app.include_router(router, dependencies=[Depends(refuse)])
    direct = FastAPI()
    direct.router.add_api_route(
        "/echo", echo, methods=["GET"], route_class_override=QueryModelRoute
    )
    with (
        ThreadedServer(app) as included,
        ThreadedServer(direct) as own,
        httpx.Client(timeout=10) as http,
    ):
        assert http.get(f"{included.url}/echo", params={"text": "hi"}).status_code == 403
        assert http.get(f"{own.url}/echo", params={"text": "hi"}).text == "hi"


def test_the_stac_api_is_built_without_stac_fastapi() -> None:
    """Plain FastAPI routes (docs/design.md): serving the catalog imports no
    stac-fastapi, so nothing of it (private names included) is relied on."""
    code = (
        "import sys\n"
        "import strato.catalog.api.stac_api, strato.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('stac_fastapi')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
