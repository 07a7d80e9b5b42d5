"""A private node (anonymous reading off): its catalog answers readers with the read scope only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.auth import Scope
from strato.context import Context
from strato.settings import Settings
from tests.helpers import assert_problem

READS = [
    ("GET", "/stac/"),
    ("GET", "/stac/search?limit=1"),
    ("POST", "/stac/search"),
    ("GET", "/stac/collections"),
    ("GET", "/stac/aggregate?aggregations=total_count"),
    ("GET", "/stac/queryables"),
    ("GET", "/stac/publications/some-request"),
    ("GET", "/esg-search/search?limit=1"),
    ("GET", "/catalog"),
]


@pytest.fixture
def private(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[tuple[str, str, str]]:
    settings = Settings(data_dir=tmp_path / "data")
    settings.auth.anonymous_read = False
    settings.data.demo = False
    ctx = Context.open(settings)
    ctx.migrate()
    ctx.identities.create_user("reader", password="a-long-password", scopes=[Scope.READ])
    ctx.identities.create_user("writer", password="a-long-password", scopes=[Scope.PUBLISH])
    reader = ctx.identities.create_token("reader", [Scope.READ]).secret
    writer = ctx.identities.create_token("writer", [Scope.PUBLISH]).secret
    yield serve(create_app(settings, context=ctx)), reader, writer
    ctx.close()


@pytest.mark.parametrize(("method", "path"), READS)
def test_reads_need_the_read_scope(private: tuple[str, str, str], method: str, path: str) -> None:
    url, reader, writer = private
    body = {"limit": 1} if method == "POST" else None
    anonymous = httpx.request(method, url + path, json=body, timeout=30)
    assert_problem(anonymous, 401, "read")
    wrong_scope = httpx.request(
        method, url + path, json=body, headers={"Authorization": f"Bearer {writer}"}, timeout=30
    )
    assert_problem(wrong_scope, 403, "read")
    allowed = httpx.request(
        method, url + path, json=body, headers={"Authorization": f"Bearer {reader}"}, timeout=30
    )
    assert allowed.status_code == 200, allowed.text


def test_writes_still_need_publish_not_read(private: tuple[str, str, str]) -> None:
    url, reader, writer = private
    r = httpx.post(
        url + "/stac/collections/CMIP6/items",
        json={"type": "Feature"},
        headers={"Authorization": f"Bearer {reader}"},
        timeout=30,
    )
    assert_problem(r, 403, "publish")
    # The publisher gets past the scope check, to the check that the collection exists.
    r = httpx.post(
        url + "/stac/collections/CMIP6/items",
        json={"type": "Feature"},
        headers={"Authorization": f"Bearer {writer}"},
        timeout=30,
    )
    assert_problem(r, 404, "CMIP6")
