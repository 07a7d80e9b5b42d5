"""A server setting's effect on the STAC API's GET reads, measured side by side.

Two ``strato api`` servers over one catalog database (the SQLite file catalog_search.py
loads), one with the settings given and one without, and one httpx client sending each
request to both in turn, alternating which goes first. On a machine whose load drifts
from minute to minute, runs one after the other differ by more than a fraction of a
millisecond; the median of the paired differences does not.

Requests: item searches with two facet filters (as catalog_search.py), single items,
the landing page.

    python bench/catalog_paired.py --setting catalog.stac_fast_path=false \\
        [--count 10000] [--requests 600]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from _serving import add_setting_option, setting_env, strato_serving
from catalog_search import _cql2, _load

WARMUP = 20

Request = tuple[str, dict[str, Any]]


def _env(tmp: Path, name: str, url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "STRATO_DATA_DIR": str(tmp / name),
        "STRATO_DATABASE_URL": url,
        "STRATO_DATA_DEMO": "false",
        "STRATO_CATALOG_CONSUME": "false",
        "STRATO_CATALOG_DATASET_SYNC_INTERVAL": "0",
        "STRATO_LOG_ACCESS": "false",
        "STRATO_AUTH_ANONYMOUS_READ": "true",
        **extra,
    }


def _paired(
    client: httpx.Client, given: str, default: str, requests: Sequence[Request]
) -> tuple[list[float], list[float]]:
    """Milliseconds of each request on the server with the settings and on the other."""
    on: list[float] = []
    off: list[float] = []
    for i, (path, params) in enumerate(requests):
        order = [(given, on), (default, off)] if i % 2 else [(default, off), (given, on)]
        for base, sink in order:
            t0 = time.perf_counter()
            client.get(base + path, params=params).raise_for_status()
            if i >= WARMUP:
                sink.append((time.perf_counter() - t0) * 1000)
    return on, off


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    add_setting_option(parser)
    args = parser.parse_args(argv)
    if not args.setting:
        raise SystemExit("--setting KEY=VALUE: the setting to compare with its default")

    cache = Path(tempfile.gettempdir()) / "strato-bench-catalog"
    cache.mkdir(exist_ok=True)
    url = f"sqlite:///{cache / f'catalog-{args.count}-{args.seed}.db'}"
    _load(url, args.count, args.seed)
    n = args.requests + WARMUP
    print(
        f"catalog, {args.count} items on SQLite; {args.requests} requests of each kind to "
        f"each server, alternating; server with {' '.join(args.setting)} against defaults; "
        "times in ms"
    )
    print(f"{'request':10} {'setting p50':>12} {'default p50':>12} {'median diff':>12}")
    with tempfile.TemporaryDirectory(prefix="strato-bench-paired-") as name:
        tmp = Path(name)
        with (
            strato_serving(_env(tmp, "a", url, setting_env(args.setting)), tmp) as given,
            strato_serving(_env(tmp, "b", url, {}), tmp) as default,
            httpx.Client(timeout=60) as client,
        ):
            page = client.get(f"{default}/stac/search", params={"limit": 200}).json()
            items = page["features"]
            combos = sorted(
                {
                    (it["properties"]["cmip6:variable_id"], it["properties"]["cmip6:experiment_id"])
                    for it in items
                }
            )
            kinds: dict[str, Callable[[int], Request]] = {
                "search": lambda i: (
                    "/stac/search",
                    {"filter": _cql2(*combos[i % len(combos)]), "limit": 10},
                ),
                "item": lambda i: (
                    f"/stac/collections/CMIP6/items/{items[i % len(items)]['id']}",
                    {},
                ),
                "landing": lambda i: ("/stac/", {}),
            }
            for kind, make in kinds.items():
                on, off = _paired(client, given, default, [make(i) for i in range(n)])
                diff = statistics.median(a - b for a, b in zip(on, off, strict=True))
                print(
                    f"{kind:10} {statistics.median(on):12.2f} {statistics.median(off):12.2f} "
                    f"{diff:+12.3f}"
                )


if __name__ == "__main__":
    main()
