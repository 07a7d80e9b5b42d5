"""Catalog search: a node with 100,000 items, through the STAC API and directly in SQL.

Loads N generated CMIP6 items into a node's database (SQLite and, when one answers on
127.0.0.1:5432, PostgreSQL), serves the node with ``strato api`` in a process of its own
on loopback, as it is deployed, and times with one httpx client:

- item searches with two facet filters (CQL2 text, as pystac-client sends it) and
  limit 10, varying the values from query to query;
- ``/stac/aggregate`` term counts over four facets.

The reference is the same work issued directly to the database in the same run: the
very statement the search runs (``CatalogSearch.explain_sql``), and the aggregation's
GROUP BY, through the bare DB-API driver. Prints p50/p95 of each and the ratio API/SQL.
Goal: search p50 <= 20 ms and API/SQL <= 1.5.

The ceiling, when nginx is installed: one search's response (ten items) saved as a file
and served by nginx, fetched and decoded by the same client as many times: what the
HTTP exchange alone costs, so the lowest API/SQL any server of those pages can reach.

    python bench/catalog_search.py [--count 100000] [--queries 300] [--no-postgres]
                                   [--no-fast-path] [--setting KEY=VALUE]

``--no-fast-path`` serves with ``catalog.stac_fast_path`` off: FastAPI reads every
GET query (what the fast path of strato.catalog.api.stac_fast saves). ``--setting
catalog.compiled_statements=false`` (repeatable) serves with that setting: every search
builds its statement (what strato.catalog.search.fast_statements saves).

The loaded SQLite database is kept in the temp directory for the next run.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from _serving import add_setting_option, nginx_serving, setting_env, strato_serving
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.search.search import CatalogSearch, SearchRequest
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.db import create_engine, session_factory, upgrade
from strato.settings import Settings

FACETS = ("cmip6:variable_id", "cmip6:experiment_id", "cmip6:source_id", "cmip6:table_id")
WHO = {"client_id": "bench", "iss": "https://bench.example", "sub": "bench"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _analyze(engine: Any) -> None:
    # Autovacuum may be off or behind: without statistics PostgreSQL plans blind.
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))


def _load(url: str, count: int, seed: int) -> None:
    engine = create_engine(url)
    upgrade(engine)
    store = ItemStore(session_factory(engine))
    have = store.count()
    if have == count:
        _analyze(engine)
        engine.dispose()
        return
    if have:
        raise SystemExit(f"{url} holds {have} items, not {count}: remove it first")
    t0 = time.perf_counter()
    batch: list[Any] = []
    for item in generate_items(count, seed=seed):
        batch.append(create_event("CMIP6", item, requester=WHO))
        if len(batch) == 1000:
            apply_events(store, batch)
            batch = []
            done = store.count()
            print(f"\r  loading: {done}/{count}", end="", file=sys.stderr, flush=True)
    if batch:
        apply_events(store, batch)
    print(f"\r  loaded {count} items in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _analyze(engine)
    engine.dispose()


def _pairs(search: CatalogSearch, queries: int, seed: int) -> list[tuple[str, str]]:
    """(variable, experiment) pairs taken from stored items, so every search finds some."""
    page = search.search(SearchRequest(limit=1000))
    combos = sorted(
        {
            (it["properties"]["cmip6:variable_id"], it["properties"]["cmip6:experiment_id"])
            for it in page.items
        }
    )
    random.Random(seed).shuffle(combos)
    return [combos[i % len(combos)] for i in range(queries)]


def _cql2(variable: str, experiment: str) -> str:
    return f"\"cmip6:variable_id\" = '{variable}' AND \"cmip6:experiment_id\" = '{experiment}'"


def _timed(calls: Sequence[Callable[[], None]]) -> list[float]:
    for call in calls[:10]:
        call()
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def run(
    name: str,
    url: str,
    queries: int,
    seed: int,
    fast_path: bool = True,
    extra: dict[str, str] | None = None,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="strato-bench-node-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url)
        settings.data.demo = False
        settings.catalog.consume = False
        settings.catalog.dataset_sync_interval = 0
        settings.log.access = False
        settings.auth.anonymous_read = True
        ctx = Context.open(settings)
        search = CatalogSearch(ctx.sessions)
        pairs = _pairs(search, queries, seed)
        statements = [
            search.explain_sql(
                SearchRequest(
                    filter={
                        "op": "and",
                        "args": [
                            {"op": "=", "args": [{"property": "cmip6:variable_id"}, v]},
                            {"op": "=", "args": [{"property": "cmip6:experiment_id"}, e]},
                        ],
                    },
                    limit=10,
                )
            )
            for v, e in pairs
        ]
        # FACETS are this file's constants, inlined as explain_sql inlines its values.
        aggregate_sql = (
            "SELECT name, value, count(DISTINCT item_pk) FROM catalog_facets WHERE name IN ("  # noqa: S608
            + ", ".join(f"'{f}'" for f in FACETS)
            + ") GROUP BY name, value"
        )
        server = {
            "STRATO_DATA_DIR": str(Path(tmp) / "server"),
            "STRATO_DATABASE_URL": url,
            "STRATO_DATA_DEMO": "false",
            "STRATO_CATALOG_DATASET_SYNC_INTERVAL": "0",
            "STRATO_LOG_ACCESS": "false",
            "STRATO_AUTH_ANONYMOUS_READ": "true",
            "STRATO_CATALOG_STAC_FAST_PATH": "true" if fast_path else "false",
            **(extra or {}),
        }
        with (
            strato_serving(server, Path(tmp)) as base,
            httpx.Client(base_url=base, timeout=60) as client,
        ):

            def api_search(v: str, e: str) -> Callable[[], None]:
                def call() -> None:
                    r = client.get("/stac/search", params={"filter": _cql2(v, e), "limit": 10})
                    r.raise_for_status()
                    assert r.json()["features"], (v, e)

                return call

            def api_aggregate() -> None:
                r = client.get("/stac/aggregate", params={"aggregations": ",".join(FACETS)})
                r.raise_for_status()

            api = _timed([api_search(v, e) for v, e in pairs])
            api_agg = _timed([api_aggregate] * max(20, queries // 10))
            v, e = pairs[0]
            page = client.get("/stac/search", params={"filter": _cql2(v, e), "limit": 10})
            ceiling = _ceiling(Path(tmp), page.content, len(pairs))

        raw = ctx.engine.raw_connection()
        try:
            cursor = raw.cursor()

            def sql(statement: str) -> Callable[[], None]:
                def call() -> None:
                    cursor.execute(statement)
                    cursor.fetchall()

                return call

            direct = _timed([sql(s) for s in statements])
            direct_agg = _timed([sql(aggregate_sql)] * max(20, queries // 10))
        finally:
            raw.close()
        ctx.close()
    return {
        "search_p50": _p(api, 50),
        "search_p95": _p(api, 95),
        "sql_p50": _p(direct, 50),
        "sql_p95": _p(direct, 95),
        "agg_p50": _p(api_agg, 50),
        "agg_p95": _p(api_agg, 95),
        "agg_sql_p50": _p(direct_agg, 50),
        "agg_sql_p95": _p(direct_agg, 95),
        **({"ceiling_p50": _p(ceiling, 50)} if ceiling else {}),
    }


def _ceiling(tmp: Path, body: bytes, queries: int) -> list[float]:
    """The same client fetching and decoding one search's response as a static file from
    nginx: what the HTTP exchange alone costs, whoever builds the page. Empty without
    nginx."""
    root = tmp / "static"
    root.mkdir()
    (root / "search.json").write_bytes(body)
    with nginx_serving(root, tmp, "/search.json") as base:
        if base is None:
            return []
        with httpx.Client(base_url=base, timeout=60) as client:

            def call() -> None:
                r = client.get("/search.json", params={"limit": 10})
                r.raise_for_status()
                assert r.json()["features"]

            return _timed([call] * queries)


def _postgres(count: int, seed: int) -> str | None:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", 5432)) != 0:
            return None
    name = f"strato_bench_catalog_{count}_{seed}"
    admin = create_engine(PG_ADMIN)
    with admin.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-fast-path", action="store_true")
    add_setting_option(parser)
    args = parser.parse_args(argv)

    cache = Path(tempfile.gettempdir()) / "strato-bench-catalog"
    cache.mkdir(exist_ok=True)
    targets = [("sqlite", f"sqlite:///{cache / f'catalog-{args.count}-{args.seed}.db'}")]
    pg = None if args.no_postgres else _postgres(args.count, args.seed)
    if pg:
        targets.append(("postgresql", pg))
    else:
        print("PostgreSQL not reachable on 127.0.0.1:5432: SQLite only", file=sys.stderr)

    print(
        f"catalog search: {args.count} items, {args.queries} searches (two facet filters, "
        f"limit 10), aggregate over {len(FACETS)} facets; STAC GET fast path "
        f"{'off' if args.no_fast_path else 'on'}; times in ms"
    )
    for setting in args.setting:
        print(f"server setting {setting}")
    print(
        f"{'database':11} {'what':10} {'API p50':>8} {'API p95':>8} {'SQL p50':>8} "
        f"{'SQL p95':>8} {'API/SQL':>8}"
    )
    verdicts = []
    for name, url in targets:
        _load(url, args.count, args.seed)
        r = run(
            name,
            url,
            args.queries,
            args.seed,
            fast_path=not args.no_fast_path,
            extra=setting_env(args.setting),
        )
        ratio = r["search_p50"] / r["sql_p50"]
        agg_ratio = r["agg_p50"] / r["agg_sql_p50"]
        print(
            f"{name:11} {'search':10} {r['search_p50']:8.1f} {r['search_p95']:8.1f} "
            f"{r['sql_p50']:8.1f} {r['sql_p95']:8.1f} {ratio:8.2f}"
        )
        print(
            f"{'':11} {'aggregate':10} {r['agg_p50']:8.1f} {r['agg_p95']:8.1f} "
            f"{r['agg_sql_p50']:8.1f} {r['agg_sql_p95']:8.1f} {agg_ratio:8.2f}"
        )
        if "ceiling_p50" in r:
            print(
                f"{'':11} {'ceiling':10} {r['ceiling_p50']:8.1f} {'':>8} {'':>8} {'':>8} "
                f"{r['ceiling_p50'] / r['sql_p50']:8.2f}   (the same response bytes from "
                "nginx, fetched and decoded by the same client)"
            )
        verdicts.append((name, r["search_p50"] <= 20.0, ratio <= 1.5))
    for name, fast, close in verdicts:
        print(
            f"goal on {name}: search p50 <= 20 ms {'met' if fast else 'NOT met'}, "
            f"API/SQL <= 1.5 {'met' if close else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
