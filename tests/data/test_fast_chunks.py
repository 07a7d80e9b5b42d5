"""Raw chunks answered before FastAPI: the same answer as the application's, and only
in the plain case."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.context import Context
from strato.data.api.fast_chunks import RawChunkFastPath
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.settings import LogSettings, Settings
from tests.data.test_http import Node, make_node
from tests.fast_path_support import FastPathProbe
from tests.helpers import assert_problem

CHUNK = "/datasets/one/kerchunk/tas/0.0.0"
COMPARED = ("content-type", "content-length", "etag", "last-modified", "cache-control")


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from make_node(tmp_path, serve)


def test_a_raw_chunk_is_the_same_whichever_path_answers(node: Node, netcdf_file: Path) -> None:
    assert node.register("one", [str(netcdf_file)]).status_code == 201
    node.http.get("/datasets/one/kerchunk/.zmetadata").raise_for_status()
    # A validator that matches nothing makes the application answer in full.
    by_app = node.http.get(CHUNK, headers={"If-None-Match": '"no-such-tag"'})
    fast = node.http.get(CHUNK, headers={"Origin": "https://viewer.example"})
    assert by_app.status_code == fast.status_code == 200
    assert fast.content == by_app.content
    assert len(fast.content) > 0
    for name in COMPARED:
        assert fast.headers[name] == by_app.headers[name], name
    # Still inside the request context and CORS.
    assert len(fast.headers["x-request-id"]) == 32
    assert fast.headers["access-control-allow-origin"] == "https://viewer.example"
    again = node.http.get(CHUNK, headers={"If-None-Match": fast.headers["etag"]})
    assert again.status_code == 304
    metrics = node.http.get("/metrics").text
    assert 'route="/datasets/{dataset_id}/kerchunk/{key:path}"' in metrics


def test_with_the_fast_path_off_the_application_answers_the_same_bytes(
    tmp_path: Path, netcdf_file: Path, serve: Callable[[Any], str]
) -> None:
    answers = []
    for fast in (True, False):
        root = tmp_path / str(fast)
        root.mkdir()
        source = root / netcdf_file.name
        shutil.copy2(netcdf_file, source)  # same bytes and times (the ETag names the path)
        for node in make_node(root, serve, fast_raw_chunks=fast):
            assert node.register("one", [str(source)]).status_code == 201
            node.http.get("/datasets/one/kerchunk/.zmetadata").raise_for_status()
            answers.append(node.http.get(CHUNK))
    on, off = answers
    assert on.status_code == off.status_code == 200
    assert on.content == off.content
    for name in COMPARED:
        if name != "etag":
            assert on.headers[name] == off.headers[name], name


def test_a_middleware_told_off_leaves_every_request_to_the_application(
    tmp_path: Path, netcdf_file: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "state",
        log=LogSettings(access=False),
        data=DataSettings(allowed_roots=[tmp_path], fast_raw_chunks=False),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    service = DataService(ctx.sessions, settings)
    try:
        service.register("one", [str(netcdf_file)])
        service.cache.get("one").raw_store  # noqa: B018 (built on first use)
        served = _Served(service)
        assert served.get(CHUNK) == 299
        assert served.reached_app == [CHUNK]
    finally:
        service.close()
        ctx.close()


def test_what_the_fast_path_leaves_alone_is_answered_as_before(
    node: Node, netcdf_file: Path
) -> None:
    assert node.register("one", [str(netcdf_file)]).status_code == 201
    assert node.http.get(CHUNK).status_code == 200
    bad_token = node.http.get(CHUNK, headers={"Authorization": "Bearer not-a-token"})
    assert bad_token.status_code == 401
    assert node.http.get(CHUNK, headers=node.auth).status_code == 200
    assert_problem(node.http.get("/datasets/one/kerchunk/tas/99.0.0"), 404, "tas/99.0.0")
    head = node.http.head(CHUNK)
    assert head.status_code == 200
    assert head.content == b""
    # The file shrinks under an open dataset: a problem saying so, never short bytes.
    netcdf_file.write_bytes(netcdf_file.read_bytes()[:100])
    shrunk = node.http.get(CHUNK)
    assert shrunk.status_code in (404, 503), shrunk.text
    assert shrunk.headers["content-type"] == "application/problem+json"


def _Served(service: DataService, anonymous_read: bool = True) -> FastPathProbe:
    return FastPathProbe(
        lambda app: RawChunkFastPath(
            app,
            service=service,
            cache_control="public, max-age=300",
            anonymous_read=anonymous_read,
        )
    )


@pytest.fixture
def service(tmp_path: Path, netcdf_file: Path) -> Iterator[DataService]:
    settings = Settings(
        data_dir=tmp_path / "state",
        log=LogSettings(access=False),
        data=DataSettings(allowed_roots=[tmp_path]),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    service = DataService(ctx.sessions, settings)
    service.register("one", [str(netcdf_file)])
    yield service
    ctx.close()


def test_only_a_plain_read_of_an_open_dataset_skips_the_application(
    service: DataService,
) -> None:
    served = _Served(service)
    service.cache.forget("one")
    assert served.get(CHUNK) == 299  # not open: the application opens it
    service.cache.get("one").raw_store  # noqa: B018 (built on first use)
    assert served.get(CHUNK) == 200
    assert served.reached_app == [CHUNK]
    for path, method, headers in [
        ("/datasets/one/kerchunk/.zmetadata", "GET", {}),
        ("/datasets/one/kerchunk/tas/.zarray", "GET", {}),
        ("/datasets/one/kerchunk/tas/9.9.9", "GET", {}),
        ("/datasets/nope/kerchunk/tas/0.0.0", "GET", {}),
        ("/datasets/one/zarr/tas/0.0.0", "GET", {}),
        (CHUNK, "HEAD", {}),
        (CHUNK, "GET", {"Authorization": "Bearer something"}),
        (CHUNK, "GET", {"If-None-Match": '"x"'}),
    ]:
        served.reached_app.clear()
        assert served.get(path, method, **headers) == 299, (path, method, headers)
        assert served.reached_app == [path]
    private = _Served(service, anonymous_read=False)
    assert private.get(CHUNK) == 299


def test_a_dataset_due_for_its_check_or_a_shrunk_file_goes_to_the_application(
    service: DataService, netcdf_file: Path
) -> None:
    served = _Served(service)
    service.cache.get("one").raw_store  # noqa: B018
    assert served.get(CHUNK) == 200
    time.sleep(1.1)  # the files are due for their check: the application does it
    assert served.get(CHUNK) == 299
    service.cache.get("one")
    assert served.get(CHUNK) == 200
    netcdf_file.write_bytes(netcdf_file.read_bytes()[:100])
    assert served.get(CHUNK) == 299
