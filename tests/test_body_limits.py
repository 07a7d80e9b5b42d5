"""Request bodies beyond ``max_body_bytes`` answer 413 naming the limit, read or not.

A real server (uvicorn in a thread) and a real client: with a Content-Length the body is
refused before it is read; chunked, without one, as soon as what arrived crosses the
limit. Either way the answer is a JSON problem and the server goes on serving.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.catalog.settings import CatalogSettings
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.helpers import assert_problem

LIMIT = 64 * 1024


@pytest.fixture
def url(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(consume=False),
        max_body_bytes=LIMIT,
    )
    ctx = Context.open(settings)
    ctx.migrate()
    yield serve(create_app(settings, context=ctx))
    ctx.close()


def search_body(size: int) -> bytes:
    """A search body of about ``size`` bytes: a filter on many plausible ids."""
    ids = [f"CMIP6.CMIP.NCAR.CESM2.historical.r{i}i1p1f1.Amon.tas.gn" for i in range(size // 70)]
    return json.dumps({"filter": {"op": "in", "args": [{"property": "id"}, ids]}}).encode()


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_larger_than_the_limit_is_413_naming_it(url: str) -> None:
    body = search_body(4 * LIMIT)
    r = httpx.post(f"{url}/stac/search", content=body, headers={"content-type": "application/json"})
    problem = assert_problem(r, 413, "larger than 65,536 bytes")
    assert "max_body_bytes" in problem["detail"]
    assert r.headers["x-request-id"]


def test_a_chunked_body_is_cut_off_as_it_crosses_the_limit(url: str) -> None:
    body = search_body(4 * LIMIT)
    r = httpx.post(
        f"{url}/stac/search",
        content=chunks(body),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "larger than 65,536 bytes")


def test_bodies_within_the_limit_and_the_server_after_refusals(url: str) -> None:
    for _ in range(3):
        httpx.post(f"{url}/stac/search", content=chunks(search_body(2 * LIMIT)))
    body = search_body(LIMIT // 2)
    r = httpx.post(f"{url}/stac/search", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{url}/stac/search",
        content=chunks(body),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_the_default_limit_is_16_mib() -> None:
    assert Settings().max_body_bytes == 16 * 1024 * 1024
