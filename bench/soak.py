"""Soak: 32 clients for minutes on catalog search, Zarr chunks and pages; memory must hold.

What runs. A node with N generated CMIP6 items (``--items``, SQLite) and the small demo
datasets is served by ``strato api`` in a process of its own on loopback, as deployed.
``--clients`` asyncio clients (aiohttp, one connection each) send requests until
``--duration`` seconds have passed, each request drawn at random from three kinds:

- search (half of them): STAC item searches, GET and POST, made of random facet
  filters (CQL2 text and JSON, ``=``, ``IN``, ``LIKE``, ``NOT``), free text ``q``,
  ``datetime`` intervals, ``bbox``, ``sortby``, ``fields``, limits, next pages by the
  ``next`` link's token, ``ids``, aggregations, collection items and the ESGF search:
  nearly every one is a query text the server has not seen before;
- chunk: one chunk of a demo dataset, through ``/zarr`` or ``/kerchunk``;
- page: ``/datasets`` (HTML), a dataset's page and STAC item, the catalog's pages, the
  STAC landing page and collections.

Every answer must be 200 (a 4xx is a wrong request of this script or a server bug
alike: both are errors here). The server's resident set size (its process and any
children) is sampled every second, under load and for ``--idle`` seconds after it. The
first ``--warmup`` seconds fill what a server keeps by design (caches up to their
bounds, the allocator's pools, the connection pool; the live set of a catalog server
under searches fills for about 45 s).

The growth is the median RSS of the last ``--window`` seconds under load over the median
of the ``--window`` seconds right after warm-up: both under the same load, like with
like. PASS needs no error and a growth under 5%. Not two single samples: under this
load single samples swung by 40-80 MB (bench/RESULTS.md) with the collector's full
passes and the allocator's releases every 10 s (:mod:`strato.heap`), so a single sample
at each end measured where in that swing it fell (a run with a trend of +2.2 MB a
minute read +16.7% so, its end sample being its peak; in the first run with window
medians the samples after warm-up spanned 572-603 MB, stddev 6 MB). The report prints
that swing (stddev, min and max of the samples after warm-up) and, beside the verdict,
the single-sample figure, the linear trend (MB a minute, and as a share over the
measured time), and the RSS once the server has idled ``--idle`` seconds after the load,
against the median after warm-up: memory a server held for the load should go back when
it ends.

The reference (the bench standard's physical limit, in the same run): the same chunk
bytes read by the same clients for ``--reference`` seconds, from nginx serving them as
files when nginx is installed, else read from local files by the client itself; and
strato serving the same chunks alone for as long. The ratio is strato's chunk p50 over
the reference's.

    .venv/bin/python bench/soak.py [--duration 300] [--warmup 60] [--window 30] [--idle 20]
                                   [--clients 32] [--items 20000] [--seed 1]
                                   [--kinds search,chunk,page]

``--kinds`` draws only the kinds named (in their usual proportions among themselves):
which kind makes the server grow.

The catalog and the demo data are made once under ``$TMPDIR/strato-bench-soak``
(``--workdir``) and reused. Only 127.0.0.1
is contacted; the server is stopped before the script exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil  # type: ignore[import-untyped]

from _serving import nginx_serving, setting_env, strato_serving
from catalog_search import _load

GROWTH_LIMIT = 0.05
# Each kind's share of the requests when all are drawn.
KIND_SHARE = {"search": 0.5, "chunk": 0.35, "page": 0.15}
KINDS = tuple(KIND_SHARE)
FACETS = (
    "cmip6:variable_id",
    "cmip6:experiment_id",
    "cmip6:source_id",
    "cmip6:table_id",
    "cmip6:member_id",
    "cmip6:institution_id",
    "cmip6:grid_label",
    "cmip6:frequency",
)
SORTS = ("-datetime", "datetime", "id", "-id", "-version", "cmip6:source_id", "-collection")
FIELDS = (
    "id,properties.cmip6:variable_id",
    "-assets",
    "-links,-geometry",
    "id,collection,properties",
    "properties.start_datetime,properties.end_datetime",
)
WORDS = ("temperature", "precipitation", "historical", "ssp585", "humidity", "wind", "ocean")


# --- the server and what it serves -------------------------------------------------


def prepare(workdir: Path, items: int, seed: int) -> tuple[str, Path]:
    """The catalog database (made once) and the demo data directory (made once)."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / f'catalog-{items}-{seed}.db'}"
    _load(url, items, seed)
    demo = workdir / "demo-data"
    if not (demo / ".demo-done").exists():
        env = _server_env(url, demo)
        subprocess.run(
            [sys.executable, "-m", "strato", "data", "demo", "--small"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}, **env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (demo / ".demo-done").write_text("")
    return url, demo


def _server_env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        "STRATO_DATA_DIR": str(data_dir),
        "STRATO_DATABASE_URL": url,
        "STRATO_DATA_DEMO": "false",
        "STRATO_CATALOG_DATASET_SYNC_INTERVAL": "0",
        "STRATO_LOG_ACCESS": "false",
        "STRATO_AUTH_ANONYMOUS_READ": "true",
    }


def server_process(port: int) -> psutil.Process:
    """The ``strato api`` child of this process that listens on ``port``."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "api" in child.cmdline() and str(port) in child.cmdline():
                return child
    raise RuntimeError(f"no strato api process on port {port}")


def rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and its children."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


@dataclass
class Served:
    """What the requests are drawn from, read from the running server."""

    datasets: list[str]
    chunks: list[str]  # paths of chunks, /zarr and /kerchunk
    values: dict[str, list[str]]  # facet -> values items have
    item_ids: list[str]


def _chunk_keys(meta: dict[str, Any]) -> list[str]:
    keys = []
    for name, zarray in meta.items():
        if not name.endswith("/.zarray") or not zarray["shape"]:
            continue
        var = name.removesuffix("/.zarray")
        sep = zarray.get("dimension_separator") or "."
        counts = [-(-s // c) for s, c in zip(zarray["shape"], zarray["chunks"], strict=True)]
        for index in _indices(counts):
            keys.append(f"{var}/{sep.join(map(str, index))}")
    return keys


def _indices(counts: list[int]) -> Iterator[tuple[int, ...]]:
    if not counts:
        yield ()
        return
    for first in range(counts[0]):
        for rest in _indices(counts[1:]):
            yield (first, *rest)


async def discover(session: aiohttp.ClientSession, base: str) -> Served:
    async with session.get(f"{base}/api/datasets") as r:
        datasets = [d["id"] for d in await r.json() if d["state"] == "ok"]
    chunks = []
    for ds in datasets:
        for store in ("zarr", "kerchunk"):
            async with session.get(f"{base}/datasets/{ds}/{store}/.zmetadata") as r:
                meta = (await r.json())["metadata"]
            chunks += [f"/datasets/{ds}/{store}/{key}" for key in _chunk_keys(meta)]
    async with session.get(
        f"{base}/stac/aggregate", params={"aggregations": ",".join(FACETS)}
    ) as r:
        aggregations = (await r.json())["aggregations"]
    values = {a["name"]: [b["key"] for b in a["buckets"]] for a in aggregations}
    async with session.get(f"{base}/stac/search", params={"limit": "500"}) as r:
        item_ids = [f["id"] for f in (await r.json())["features"]]
    if not datasets or not chunks or not item_ids:
        raise RuntimeError("the server has no datasets, chunks or items to read")
    return Served(datasets, chunks, values, item_ids)


# --- requests ----------------------------------------------------------------------


@dataclass
class Request:
    kind: str  # search, chunk or page
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Draw:
    """Random requests; search requests nearly all distinct."""

    def __init__(self, served: Served, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> None:
        self.s = served
        self.rng = rng
        # The kinds drawn, in their usual proportions among themselves.
        self.weights = [KIND_SHARE[k] for k in kinds]
        self.kinds = kinds
        # Next links of earlier searches, followed now and then (keyset tokens).
        self.next_links: list[str] = []

    def request(self) -> Request:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "search":
            return self.search()
        if kind == "chunk":
            return Request("chunk", "GET", self.rng.choice(self.s.chunks))
        return self.page()

    # Pieces of searches.
    def _value(self, facet: str) -> str:
        return self.rng.choice(self.s.values[facet])

    def _facets(self) -> list[str]:
        return self.rng.sample([f for f in FACETS if self.s.values.get(f)], self.rng.randint(1, 3))

    def _cql2_text(self) -> str:
        terms = []
        for facet in self._facets():
            how = self.rng.random()
            if how < 0.5:
                terms.append(f"\"{facet}\" = '{self._value(facet)}'")
            elif how < 0.8:
                picked = {self._value(facet) for _ in range(self.rng.randint(2, 4))}
                terms.append(f'"{facet}" IN ({", ".join(repr(v) for v in sorted(picked))})')
            elif how < 0.9:
                terms.append(f"\"{facet}\" LIKE '{self._value(facet)[:2]}%'")
            else:
                terms.append(f"NOT \"{facet}\" = '{self._value(facet)}'")
        return (" OR " if self.rng.random() < 0.15 else " AND ").join(terms)

    def _cql2_json(self) -> dict[str, Any]:
        args: list[dict[str, Any]] = []
        for facet in self._facets():
            if self.rng.random() < 0.6:
                args.append({"op": "=", "args": [{"property": facet}, self._value(facet)]})
            else:
                picked = sorted({self._value(facet) for _ in range(self.rng.randint(2, 4))})
                args.append({"op": "in", "args": [{"property": facet}, picked]})
        return args[0] if len(args) == 1 else {"op": "and", "args": args}

    def _datetime(self) -> str:
        y0 = self.rng.randint(1850, 2090)
        start = f"{y0}-{self.rng.randint(1, 12):02}-{self.rng.randint(1, 28):02}T00:00:00Z"
        y1 = min(2100, y0 + self.rng.randint(0, 60))
        end = f"{y1}-{self.rng.randint(1, 12):02}-{self.rng.randint(1, 28):02}T23:59:59Z"
        shape = self.rng.random()
        if shape < 0.2:
            return f"../{end}"
        if shape < 0.4:
            return f"{start}/.."
        return f"{start}/{end}" if start <= end else f"{end}/{start}"

    def _bbox(self) -> list[float]:
        w = round(self.rng.uniform(-180, 170), 3)
        s = round(self.rng.uniform(-90, 80), 3)
        return [w, s, round(self.rng.uniform(w + 1, 180), 3), round(self.rng.uniform(s + 1, 90), 3)]

    def search(self) -> Request:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12 and self.next_links:
            link = self.next_links.pop(rng.randrange(len(self.next_links)))
            return Request("search", "GET", link)
        if roll < 0.55:
            params: dict[str, str] = {"limit": str(rng.randint(1, 50))}
            if rng.random() < 0.7:
                params["filter"] = self._cql2_text()
            if rng.random() < 0.3:
                params["datetime"] = self._datetime()
            if rng.random() < 0.2:
                params["bbox"] = ",".join(map(str, self._bbox()))
            if rng.random() < 0.3:
                params["sortby"] = rng.choice(SORTS)
            if rng.random() < 0.3:
                params["fields"] = rng.choice(FIELDS)
            if rng.random() < 0.2:
                params["q"] = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
            if rng.random() < 0.2:
                params["collections"] = "CMIP6"
            return Request("search", "GET", "/stac/search", params)
        if roll < 0.75:
            body: dict[str, Any] = {"limit": rng.randint(1, 50)}
            if rng.random() < 0.6:
                body["filter"] = self._cql2_json()
                body["filter-lang"] = "cql2-json"
            elif rng.random() < 0.5:
                facet = rng.choice(FACETS[:4])
                body["query"] = {facet: {"eq": self._value(facet)}}
            if rng.random() < 0.3:
                body["datetime"] = self._datetime()
            if rng.random() < 0.2:
                body["bbox"] = self._bbox()
            if rng.random() < 0.3:
                key = rng.choice(SORTS)
                body["sortby"] = [
                    {"field": key.lstrip("-"), "direction": "desc" if key[0] == "-" else "asc"}
                ]
            if rng.random() < 0.1:
                body["ids"] = rng.sample(self.s.item_ids, rng.randint(1, 5))
            return Request("search", "POST", "/stac/search", body=body)
        if roll < 0.83:
            params = {"limit": str(rng.randint(1, 30)), "datetime": self._datetime()}
            if rng.random() < 0.5:
                params["bbox"] = ",".join(map(str, self._bbox()))
            return Request("search", "GET", "/stac/collections/CMIP6/items", params)
        if roll < 0.9:
            facets = rng.sample(FACETS, rng.randint(1, 3))
            params = {"aggregations": ",".join(facets), "filter": self._cql2_text()}
            return Request("search", "GET", "/stac/aggregate", params)
        facet = rng.choice(FACETS[:4])
        params = {
            facet.removeprefix("cmip6:"): self._value(facet),
            "limit": str(rng.randint(1, 20)),
            "format": "application/solr+json",
        }
        if rng.random() < 0.5:
            params["query"] = rng.choice(WORDS)
        return Request("search", "GET", "/esg-search/search", params)

    def page(self) -> Request:
        rng = self.rng
        html = {"accept": "text/html"}
        ds = rng.choice(self.s.datasets)
        item = rng.choice(self.s.item_ids)
        facet = rng.choice(FACETS[:4])
        choices = [
            Request("page", "GET", "/datasets", headers=html),
            Request("page", "GET", f"/datasets/{ds}/", headers=html),
            Request("page", "GET", f"/datasets/{ds}/stac"),
            Request("page", "GET", "/stac/"),
            Request("page", "GET", "/stac/collections"),
            Request("page", "GET", f"/stac/collections/CMIP6/items/{quote(item)}"),
            Request("page", "GET", f"/catalog/collections/CMIP6/items/{quote(item)}"),
            Request(
                "page",
                "GET",
                "/catalog",
                {"q": rng.choice(WORDS), facet.removeprefix("cmip6:"): self._value(facet)},
            ),
        ]
        return rng.choice(choices)


# --- the load ------------------------------------------------------------------------


@dataclass
class Tally:
    # (kind, seconds) of each answer after warm-up; errors of the whole run.
    latencies: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    distinct: set[str] = field(default_factory=set)

    def add(self, kind: str, seconds: float, measured: bool) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if measured:
            self.latencies.setdefault(kind, []).append(seconds)


async def _one(
    session: aiohttp.ClientSession, base: str, req: Request, draw: Draw
) -> tuple[int, bytes]:
    url = req.path if req.path.startswith("http") else base + req.path
    async with session.request(
        req.method, url, params=req.params or None, json=req.body, headers=req.headers
    ) as r:
        body = await r.read()
        if r.status == 200 and req.kind == "search" and req.path.endswith("/search"):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                for link in json.loads(body).get("links", []):
                    rel, method = link.get("rel"), link.get("method", "GET")
                    if rel == "next" and method == "GET" and len(draw.next_links) < 50:
                        draw.next_links.append(link["href"])
        return r.status, body


async def client(
    base: str,
    served: Served,
    seed: int,
    start: float,
    warmup: float,
    stop: float,
    tally: Tally,
    kinds: tuple[str, ...] = KINDS,
) -> None:
    draw = Draw(served, random.Random(seed), kinds)
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        while time.monotonic() < stop:
            req = draw.request()
            if req.kind == "search":
                tally.distinct.add(
                    f"{req.method} {req.path} {sorted(req.params.items())} "
                    f"{json.dumps(req.body, sort_keys=True)}"
                )
            t0 = time.monotonic()
            try:
                status, body = await _one(session, base, req, draw)
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.errors.append(f"{req.method} {req.path} {req.params}: {exc!r}")
                continue
            elapsed = time.monotonic() - t0
            if status != 200:
                tally.errors.append(
                    f"{req.method} {req.path} {req.params} {req.body}: {status} {body[:300]!r}"
                )
                continue
            tally.add(req.kind, elapsed, t0 >= start + warmup)


class RssSampler:
    """The server's RSS every second, in a thread of its own."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss(self.proc)))
            self._stop.wait(1.0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, t: float) -> int:
        """The last sample taken at or before ``t``."""
        before = [r for s, r in self.samples if s <= t]
        return before[-1] if before else self.samples[0][1]


async def soak(base: str, served: Served, args: argparse.Namespace) -> Tally:
    tally = Tally()
    start = time.monotonic()
    stop = start + args.duration
    await asyncio.gather(
        *(
            client(base, served, args.seed * 1000 + i, start, args.warmup, stop, tally, args.kinds)
            for i in range(args.clients)
        )
    )
    return tally


async def chunks_only(base: str, paths: list[str], clients: int, seconds: float) -> list[float]:
    """Each client reading ``paths`` at random from ``base`` for ``seconds``."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def one(seed: int) -> None:
        rng = random.Random(seed)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                async with session.get(base + rng.choice(paths)) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"reference read answered {r.status}")
                latencies.append(time.monotonic() - t0)

    await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies


async def local_reads(files: list[Path], clients: int, seconds: float) -> list[float]:
    """Each client reading ``files`` at random, in the event loop, for ``seconds``."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def one(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            t0 = time.monotonic()
            rng.choice(files).read_bytes()
            latencies.append(time.monotonic() - t0)
            await asyncio.sleep(0)

    await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies


async def reference(
    base: str, served: Served, rundir: Path, clients: int, seconds: float
) -> tuple[str, list[float], list[float]]:
    """(what, the limit's latencies, strato's) reading the same chunks alone."""
    paths = served.chunks
    root = rundir / "chunks"
    files = []
    async with aiohttp.ClientSession() as session:
        for path in paths:
            async with session.get(base + path) as r:
                target = root / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(await r.read())
                files.append(target)
    mine = await chunks_only(base, paths, clients, seconds)
    with nginx_serving(root, rundir, paths[0]) as nginx:
        if nginx is not None:
            return "nginx", await chunks_only(nginx, paths, clients, seconds), mine
    return "local file read", await local_reads(files, clients, seconds), mine


# --- report --------------------------------------------------------------------------


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


@dataclass
class Memory:
    """What the RSS samples of one run say (bytes; see the module's docstring)."""

    first: int  # at the start of the load
    warm: int  # single sample at the end of warm-up
    end: int  # single sample at the end of the load
    peak: int
    early: float  # median of the window right after warm-up
    late: float  # median of the last window under load
    spread: tuple[float, int, int]  # stddev, min, max of the samples after warm-up
    slope: float  # bytes per second over the samples after warm-up
    idle: int  # last sample after the load stopped and the server idled
    idle_seconds: float

    @property
    def growth(self) -> float:
        return (self.late - self.early) / self.early

    @property
    def single(self) -> float:
        return (self.end - self.warm) / self.warm

    def trend_over(self, seconds: float) -> float:
        """The trend's growth over ``seconds``, as a share of the early median."""
        return self.slope * seconds / self.early

    @property
    def released(self) -> float:
        return (self.idle - self.early) / self.early


def memory(
    sampler: RssSampler, start: float, warmup: float, load_end: float, window: float
) -> Memory:
    samples = sampler.samples
    warm_end = start + warmup
    under_load = [(t, r) for t, r in samples if warm_end <= t <= load_end]
    early = [r for t, r in under_load if t < warm_end + window]
    late = [r for t, r in under_load if t >= load_end - window]
    idle = [(t, r) for t, r in samples if t > load_end]
    values = [r for _, r in under_load]
    slope = (
        statistics.linear_regression([t for t, _ in under_load], values).slope
        if len(under_load) > 2
        else float("nan")
    )
    return Memory(
        first=samples[0][1],
        warm=sampler.at(warm_end),
        end=sampler.at(load_end),
        peak=max(r for t, r in samples if t <= load_end),
        early=statistics.median(early),
        late=statistics.median(late),
        spread=(statistics.pstdev(values), min(values), max(values)),
        slope=slope,
        idle=idle[-1][1] if idle else sampler.at(load_end),
        idle_seconds=idle[-1][0] - load_end if idle else 0.0,
    )


def report(
    args: argparse.Namespace,
    tally: Tally,
    mem: Memory,
    ref: tuple[str, list[float], list[float]] | None,
) -> bool:
    measured = args.duration - args.warmup
    print(
        f"soak: {args.clients} clients, {args.duration:.0f} s ({args.warmup:.0f} s warm-up), "
        f"{args.items} catalog items; latencies after warm-up, in ms"
    )
    print(f"{'kind':8} {'requests':>9} {'per s':>7} {'p50':>7} {'p95':>7}")
    for kind in ("search", "chunk", "page"):
        lat = tally.latencies.get(kind, [])
        print(
            f"{kind:8} {tally.counts.get(kind, 0):9d} {len(lat) / measured:7.1f} "
            f"{_p(lat, 50) * 1000:7.1f} {_p(lat, 95) * 1000:7.1f}"
        )
    total = sum(tally.counts.values())
    print(f"all      {total:9d}; distinct search requests: {len(tally.distinct)}")
    print(f"errors: {len(tally.errors)}")
    for line in tally.errors[:10]:
        print(f"  {line[:400]}")
    stddev, low, high = mem.spread
    print(
        f"server RSS: at start {_mb(mem.first)}, peak under load {_mb(mem.peak)}; "
        f"samples after warm-up: stddev {_mb(stddev)}, min {_mb(low)}, max {_mb(high)}"
    )
    print(
        f"  median of the {args.window:.0f} s after warm-up {_mb(mem.early)}, of the last "
        f"{args.window:.0f} s under load {_mb(mem.late)}: growth {mem.growth * 100:+.1f}%"
    )
    print(
        f"  single samples (not the verdict): end of warm-up {_mb(mem.warm)}, end of load "
        f"{_mb(mem.end)}: {mem.single * 100:+.1f}%"
    )
    print(
        f"  trend after warm-up (not the verdict): {mem.slope * 60 / 1e6:+.1f} MB per minute, "
        f"{mem.trend_over(measured) * 100:+.1f}% over the {measured:.0f} s measured"
    )
    print(
        f"  idle {mem.idle_seconds:.0f} s after the load: {_mb(mem.idle)}, "
        f"{mem.released * 100:+.1f}% against the median after warm-up"
    )
    searched = tally.counts.get("search", 0)  # warm-up included
    if searched:
        print(f"  {(mem.late - mem.first) / searched / 1e3:+.1f} KB per search request from start")
    if ref is not None:
        what, limit, mine = ref
        print(
            f"reference, chunks alone for {args.reference:.0f} s, {args.clients} clients: "
            f"strato p50 {_p(mine, 50) * 1000:.2f} ms ({len(mine) / args.reference:.0f}/s), "
            f"{what} p50 {_p(limit, 50) * 1000:.3f} ms ({len(limit) / args.reference:.0f}/s); "
            f"strato/{what} {_p(mine, 50) / _p(limit, 50):.1f}"
        )
    ok = not tally.errors and mem.growth < GROWTH_LIMIT
    print(
        f"{'PASS' if ok else 'FAIL'}: errors {len(tally.errors)} (must be 0), "
        f"RSS growth after warm-up, window medians, {mem.growth * 100:+.1f}% "
        f"(must be < {GROWTH_LIMIT * 100:.0f}%)"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds not measured")
    parser.add_argument(
        "--window", type=float, default=30.0, help="seconds of each window whose median RSS counts"
    )
    parser.add_argument(
        "--idle", type=float, default=20.0, help="seconds the server idles after the load"
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="a server setting, section.key=value (database_pool_size=5); repeatable",
    )
    parser.add_argument(
        "--samples", type=Path, help="write the RSS samples there (JSON: seconds from start, MB)"
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--items", type=int, default=20_000, help="catalog items")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reference", type=float, default=10.0, help="seconds of each reference read (0: none)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "strato-bench-soak"
    )
    parser.add_argument(
        "--kinds",
        type=lambda text: tuple(k for k in text.split(",") if k),
        default=KINDS,
        help="comma-separated kinds of request drawn (default: search,chunk,page)",
    )
    args = parser.parse_args(argv)
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds takes some of {','.join(KINDS)}")
    if not 0 <= args.warmup < args.duration:
        parser.error("--warmup must be less than --duration")
    if not 0 < 2 * args.window <= args.duration - args.warmup:
        parser.error("two --window must fit in the time after --warmup")

    url, demo = prepare(args.workdir, args.items, args.seed)
    with tempfile.TemporaryDirectory(prefix="strato-soak-") as tmp:
        rundir = Path(tmp)
        env = {**_server_env(url, demo), **setting_env(args.setting)}
        with strato_serving(env, rundir) as base:
            proc = server_process(int(base.rsplit(":", 1)[1]))
            served = asyncio.run(_discover(base))
            with RssSampler(proc) as sampler:
                start = time.monotonic()
                tally = asyncio.run(soak(base, served, args))
                load_end = time.monotonic()
                time.sleep(args.idle)  # what the server gives back when idle
            mem = memory(sampler, start, args.warmup, load_end, args.window)
            if args.samples is not None:
                # What the figures were made from, for a plot or another estimate.
                args.samples.write_text(
                    json.dumps(
                        {
                            "warmup": args.warmup,
                            "load_end": round(load_end - start, 1),
                            "samples": [[round(t - start, 1), r / 1e6] for t, r in sampler.samples],
                        }
                    )
                )
            ref = None
            if args.reference > 0:
                ref = asyncio.run(reference(base, served, rundir, args.clients, args.reference))
        ok = report(args, tally, mem, ref)
    return 0 if ok else 1


async def _discover(base: str) -> Served:
    async with aiohttp.ClientSession() as session:
        return await discover(session, base)


if __name__ == "__main__":
    sys.exit(main())
