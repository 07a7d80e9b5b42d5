"""CPU per STAC API GET request inside strato's app, a server setting on and off.

Two apps over one catalog database (the SQLite file catalog_search.py loads), one with
the settings given and one with the defaults, each called directly as an ASGI app (no
HTTP, no client, no other process) in alternating batches, timing the process's CPU:
what a server-side change saves or costs per request, without the client's and the
network's share, and without the drift of a shared machine between one run and the next.

    python bench/catalog_handler_cpu.py --setting catalog.stac_fast_path=false \\
        [--count 10000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _serving import add_setting_option, setting_env
from catalog_search import _cql2, _load
from strato.app import create_app
from strato.context import Context
from strato.settings import Settings

BATCH = 50
WARMUP = 100


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _settings(data_dir: Path, url: str, extra: dict[str, str]) -> Settings:
    with _environment(
        {
            "STRATO_DATA_DIR": str(data_dir),
            "STRATO_DATABASE_URL": url,
            "STRATO_DATA_DEMO": "false",
            "STRATO_CATALOG_CONSUME": "false",
            "STRATO_CATALOG_DATASET_SYNC_INTERVAL": "0",
            "STRATO_LOG_ACCESS": "false",
            "STRATO_AUTH_ANONYMOUS_READ": "true",
            **extra,
        }
    ):
        return Settings()


def _scope(path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(app: Any, path: str, query: str) -> int:
    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(_scope(path, query), _receive, send)
    return status[0]


async def _measure(apps: Sequence[Any], requests: Sequence[tuple[str, str]]) -> list[float]:
    """CPU ms per request of each app, batches alternating between them."""
    spent = [0.0] * len(apps)
    for app in apps:
        for path, query in requests[:WARMUP]:
            await _call(app, path, query)
    for start in range(0, len(requests), BATCH):
        batch = requests[start : start + BATCH]
        turn = (start // BATCH) % len(apps)
        for k in range(len(apps)):
            index = (turn + k) % len(apps)
            t0 = time.process_time()
            for path, query in batch:
                status = await _call(apps[index], path, query)
                if status != 200:
                    raise SystemExit(f"{path}?{query} answered {status}")
            spent[index] += time.process_time() - t0
    return [1000 * s / len(requests) for s in spent]


async def _run(args: argparse.Namespace, url: str, tmp: Path) -> None:
    given = _settings(tmp / "a", url, setting_env(args.setting))
    default = _settings(tmp / "b", url, {})
    contexts = [Context.open(given), Context.open(default)]
    apps = [create_app(s, context=c) for s, c in zip((given, default), contexts, strict=True)]
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        combos, ids = await _items(apps[1])
        kinds = {
            "search": [
                (
                    "/stac/search",
                    urlencode({"filter": _cql2(*combos[i % len(combos)]), "limit": "10"}),
                )
                for i in range(args.requests)
            ],
            "item": [
                (f"/stac/collections/CMIP6/items/{ids[i % len(ids)]}", "")
                for i in range(args.requests)
            ],
            "conformance": [("/stac/conformance", "")] * args.requests,
        }
        print(f"{'request':12} {'setting ms':>11} {'default ms':>11} {'ratio':>7}")
        for kind, requests in kinds.items():
            on, off = await _measure(apps, requests)
            print(f"{kind:12} {on:11.3f} {off:11.3f} {on / off:7.2f}")
    for ctx in contexts:
        ctx.close()


async def _items(app: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """Facet pairs and item ids of stored items, read through the app itself."""
    body: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(_scope("/stac/search", "limit=200"), _receive, send)
    features = json.loads(b"".join(body))["features"]
    combos = sorted(
        {
            (f["properties"]["cmip6:variable_id"], f["properties"]["cmip6:experiment_id"])
            for f in features
        }
    )
    return combos, [f["id"] for f in features]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=1)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    if not args.setting:
        raise SystemExit("--setting KEY=VALUE: the setting to compare with its default")
    cache = Path(tempfile.gettempdir()) / "strato-bench-catalog"
    cache.mkdir(exist_ok=True)
    url = f"sqlite:///{cache / f'catalog-{args.count}-{args.seed}.db'}"
    _load(url, args.count, args.seed)
    print(
        f"catalog, {args.count} items on SQLite; {args.requests} requests of each kind to "
        f"each app in alternating batches of {BATCH}; app with {' '.join(args.setting)} "
        "against defaults; process CPU per request"
    )
    with tempfile.TemporaryDirectory(prefix="strato-bench-cpu-") as name:
        asyncio.run(_run(args, url, Path(name)))


if __name__ == "__main__":
    main()
