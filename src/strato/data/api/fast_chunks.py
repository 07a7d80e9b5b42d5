"""Raw chunks of /kerchunk served straight from the ASGI scope.

A client reading a variable through the raw passthrough asks for hundreds of chunks,
and each is just a byte range of a file: FastAPI's routing, dependency resolution and
thread hand-off cost more than the read itself (measured in ``bench/zarr_serving.py``).
This middleware answers the plain case itself -- an anonymous ``GET`` of a chunk of a
dataset that is open and recently checked -- and hands everything else to the
application, which answers it as it always does (errors, 304s, authentication, a
dataset due for its check of the source files). The answer is the same either way:
same body, ``ETag``, ``Last-Modified``, ``Cache-Control`` and media type.

A fast path: ``data.fast_raw_chunks = false`` turns it off, and
tests/data/test_fast_chunks.py checks both paths give the same bytes and headers. What
justifies it: it halves the server's CPU per read of a variable through ``/kerchunk``,
0.04-0.05 s against 0.08-0.11 s off for 60 chunks (``bench/zarr_serving.py --quick``
with ``--setting data.fast_raw_chunks=false``; bench/RESULTS.md, Zarr serving, fast paths
off and on, 2026-12-04). A single client's MB/s does not show it: the client's decoding
takes most of a read's time.
"""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import NamedTuple

from starlette.types import ASGIApp, Receive, Scope, Send

from strato.data.api.routes import store_etag
from strato.data.datasets.confine import OutsideRoots, read_resolved
from strato.data.raw.raw_store import ByteRange
from strato.data.service import DataService
from strato.data.settings import DataSettings
from strato.http.conditional import http_date

ROUTE_PATH = "/datasets/{dataset_id}/kerchunk/{key:path}"
_PATH = re.compile(r"^/datasets/([^/]+)/kerchunk/(.+)$")
# Chunk keys only: metadata documents are few, small and go the usual way.
_METADATA = (".zmetadata", ".zgroup", ".zattrs", ".zarray")
# Headers the application would act on: with any of them, it answers.
_DEFER = (b"authorization", b"if-none-match", b"cookie")


class _Route(NamedTuple):
    # What the request-context middleware reads to label metrics: the route's template.
    path: str


_ROUTE = _Route(ROUTE_PATH)


class RawChunkFastPath:
    def __init__(
        self, app: ASGIApp, *, service: DataService, cache_control: str, anonymous_read: bool
    ) -> None:
        self.app = app
        self.service = service
        self.cache_control = cache_control.encode()
        # Off (data.fast_raw_chunks = false): every request goes to the application.
        self.enabled = anonymous_read and DataSettings.of(service.settings).fast_raw_chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        target = self._target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        fingerprint_etag, last_modified, where = target
        body: bytes | bytearray | None
        if isinstance(where, bytes):
            body = where
        else:
            # From the page cache right here: a hop to a thread and back costs more than
            # the copy, and under load each hop waits for the scheduler. What is not all
            # cached is read in a thread, so the event loop never waits for a disk.
            body = _read(where, cached_only=True)
            if body is None:
                loop = asyncio.get_running_loop()
                body = await loop.run_in_executor(None, partial(_read, where, cached_only=False))
            if body is None:  # the file changed under us: the application says how
                await self.app(scope, receive, send)
                return
        scope["route"] = _ROUTE
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
            (b"etag", fingerprint_etag),
            (b"cache-control", self.cache_control),
        ]
        if last_modified:
            headers.append((b"last-modified", last_modified))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _target(self, scope: Scope) -> tuple[bytes, bytes, bytes | ByteRange] | None:
        match = _PATH.match(scope["path"])
        if match is None:
            return None
        dataset_id, key = match.groups()
        if key.endswith(_METADATA) or any(name in _DEFER for name, _ in scope["headers"]):
            return None
        opened = self.service.cache.peek(dataset_id)
        store = None if opened is None else opened.raw_store_if_built
        if opened is None or store is None:
            return None
        where = store.entry(key)
        if where is None:
            return None
        etag = store_etag(opened, key).encode()
        modified = http_date(opened.last_modified).encode()
        return etag, modified if opened.last_modified else b"", where


def _read(where: ByteRange, *, cached_only: bool) -> bytes | bytearray | None:
    try:
        # Not followed through a symbolic link put there since: the application answers.
        return read_resolved(where.path, where.offset, where.length, cached_only=cached_only)
    except (OSError, OutsideRoots):
        return None
