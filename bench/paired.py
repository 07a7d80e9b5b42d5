"""Two versions of strato's server, measured in interleaved runs on the same data.

On a shared machine whose load drifts from minute to minute, one version's runs and then
the other's compare the load as much as the code. Here each tree's server is run in
turn, before, after, after, before, ... (the order flips every pair), so a drift hits
both; the spread of a version's own runs is the noise the other's median is judged by.
A tree is a checkout's ``src/`` put ahead of the installed strato on PYTHONPATH
(e.g. ``git worktree add ../strato-before COMMIT``).

``catalog``: the SQLite catalog of ``--count`` generated items is loaded once by the
first tree's own ``bench/catalog_search.py`` (so its schema history is that tree's), and
each other tree gets a copy brought up to date by its own ``strato db upgrade``. Both
servers run at once, each on its copy; a run times, against one of them, with one httpx
client (concurrency 1): item searches with two facet filters, limit 10, as GET (CQL2
text, as pystac-client sends it) and as POST (CQL2 JSON), then ``/stac/aggregate`` over
four facets. Per run: p50, p95, requests/s and the server's CPU ms per request.

``zarr``: ``bench/zarr_serving.py --quick --server-src TREE`` for each tree in turn
(xpublish-zarr is read in every run too, a gauge of the run's load); per run the MB/s of
``/zarr`` v3, v2, ``/kerchunk`` and the server's CPU per whole-variable read.

    python bench/paired.py catalog --tree before=../strato-before \\
        --tree after=../strato-after [--pairs 4] [--count 10000] [--queries 300]
    python bench/paired.py zarr --tree before=... --tree after=... [--pairs 3]

``--tree-setting NAME KEY=VALUE`` gives one tree's server a setting (repeatable): the same
checkout under two names, one with a setting, tells whether that setting makes a
difference seen between two versions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from _serving import _free_port, _process_serving, setting_env
from catalog_search import FACETS, _cql2

HERE = Path(__file__).resolve().parent
Tree = tuple[str, Path]
# --tree-setting NAME KEY=VALUE: a server setting for one tree's server only, so one
# checkout can be compared with itself under another setting
SETTINGS: dict[str, list[str]] = {}
WARMUP = 10


def _pythonpath(tree: Path, *more: Path) -> str:
    parts = [str(tree / "src"), *map(str, more), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def _load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _order(trees: Sequence[Tree], pair: int) -> list[Tree]:
    return list(trees) if pair % 2 == 0 else list(reversed(trees))


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


# --------------------------------------------------------------------------- catalog


def _catalogs(trees: Sequence[Tree], count: int, seed: int, work: Path) -> dict[str, Path]:
    """A copy of one catalog per tree, each at its own tree's schema."""
    first_name, first = trees[0]
    src = work / f"catalog-{count}-{seed}.db"
    if not src.exists():
        code = (
            "import sys, catalog_search; "
            "catalog_search._load(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))"
        )
        env = {**os.environ, "PYTHONPATH": _pythonpath(first, first / "bench")}
        subprocess.run(
            [sys.executable, "-c", code, f"sqlite:///{src}", str(count), str(seed)],
            env=env,
            check=True,
        )
    copies = {}
    for name, tree in trees:
        db = work / f"{name}.db"
        shutil.copyfile(src, db)
        if name != first_name:
            env = {
                **os.environ,
                "PYTHONPATH": _pythonpath(tree),
                "STRATO_DATA_DIR": str(work / f"{name}-upgrade"),
                "STRATO_DATABASE_URL": f"sqlite:///{db}",
            }
            subprocess.run([sys.executable, "-m", "strato", "db", "upgrade"], env=env, check=True)
        copies[name] = db
    return copies


@contextlib.contextmanager
def _server(tree: Path, db: Path, work: Path, name: str) -> Iterator[tuple[str, psutil.Process]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env.update(
        {
            "PYTHONPATH": _pythonpath(tree),
            "STRATO_DATA_DIR": str(work / f"{name}-data"),
            "STRATO_DATABASE_URL": f"sqlite:///{db}",
            "STRATO_DATA_DEMO": "false",
            "STRATO_CATALOG_CONSUME": "false",
            "STRATO_CATALOG_DATASET_SYNC_INTERVAL": "0",
            "STRATO_LOG_ACCESS": "false",
            "STRATO_AUTH_ANONYMOUS_READ": "true",
            **setting_env(SETTINGS.get(name, [])),
        }
    )
    log = work / f"{name}-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strato", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with _process_serving(
        proc,
        f"http://127.0.0.1:{port}",
        "/readyz",
        90,
        lambda: f"{name}: strato api did not start:\n{log.read_text()[-2000:]}",
    ) as base:
        yield base, psutil.Process(proc.pid)


def _cpu(proc: psutil.Process) -> float:
    procs = [proc, *proc.children(recursive=True)]
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def _timed(
    client: httpx.Client, proc: psutil.Process, calls: Sequence[Callable[[httpx.Client], None]]
) -> dict[str, float]:
    for call in calls[:WARMUP]:
        call(client)
    times = []
    cpu0 = _cpu(proc)
    t_all = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter()
        call(client)
        times.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - t_all
    q = statistics.quantiles(times, n=100)
    return {
        "p50": q[49],
        "p95": q[94],
        "rps": len(calls) / elapsed,
        "cpu": (_cpu(proc) - cpu0) * 1000 / len(calls),
    }


def _requests(
    base: str, combos: Sequence[tuple[str, str]], queries: int
) -> dict[str, list[Callable[[httpx.Client], None]]]:
    def get_search(v: str, e: str) -> Callable[[httpx.Client], None]:
        def call(client: httpx.Client) -> None:
            r = client.get(f"{base}/stac/search", params={"filter": _cql2(v, e), "limit": 10})
            r.raise_for_status()
            assert r.json()["features"], (v, e)

        return call

    def post_search(v: str, e: str) -> Callable[[httpx.Client], None]:
        body = {
            "filter-lang": "cql2-json",
            "filter": {
                "op": "and",
                "args": [
                    {"op": "=", "args": [{"property": "cmip6:variable_id"}, v]},
                    {"op": "=", "args": [{"property": "cmip6:experiment_id"}, e]},
                ],
            },
            "limit": 10,
        }

        def call(client: httpx.Client) -> None:
            r = client.post(f"{base}/stac/search", json=body)
            r.raise_for_status()
            assert r.json()["features"], (v, e)

        return call

    def aggregate(client: httpx.Client) -> None:
        r = client.get(f"{base}/stac/aggregate", params={"aggregations": ",".join(FACETS)})
        r.raise_for_status()

    pairs = [combos[i % len(combos)] for i in range(queries)]
    return {
        "GET search": [get_search(v, e) for v, e in pairs],
        "POST search": [post_search(v, e) for v, e in pairs],
        "aggregate": [aggregate] * max(30, queries // 10),
    }


def _alternate(
    client: httpx.Client,
    servers: dict[str, tuple[str, psutil.Process]],
    trees: Sequence[Tree],
    combos: Sequence[tuple[str, str]],
    n: int,
) -> None:
    """Each request sent to every server in turn, the order flipping from one to the next:
    the median of the paired differences sees a fraction of a millisecond that runs of
    seconds apart, on a machine whose load drifts, do not."""
    calls = {name: _requests(servers[name][0], combos, n) for name, _ in trees}
    first = trees[0][0]
    print(f"\nalternating request by request, {n} of each kind; ms; differences against {first}")
    for kind in calls[first]:
        times: dict[str, list[float]] = {name: [] for name, _ in trees}
        for i in range(len(calls[first][kind])):
            for name, _ in _order(trees, i):
                t0 = time.perf_counter()
                calls[name][kind][i](client)
                if i >= WARMUP:
                    times[name].append((time.perf_counter() - t0) * 1000)
        for name, _ in trees[1:]:
            diffs = [a - b for a, b in zip(times[name], times[first], strict=True)]
            print(
                f"{kind:12} {first} p50 {statistics.median(times[first]):6.2f}  {name} p50 "
                f"{statistics.median(times[name]):6.2f}  median({name} - {first}) "
                f"{statistics.median(diffs):+7.3f}",
                flush=True,
            )


def catalog(args: argparse.Namespace, trees: Sequence[Tree]) -> None:
    work = Path(tempfile.mkdtemp(prefix="strato-bench-paired-"))
    try:
        dbs = _catalogs(trees, args.count, args.seed, work)
        with contextlib.ExitStack() as stack, httpx.Client(timeout=60) as client:
            servers = {
                name: stack.enter_context(_server(tree, dbs[name], work, name))
                for name, tree in trees
            }
            first = next(iter(servers.values()))[0]
            page = client.get(f"{first}/stac/search", params={"limit": 200}).json()
            combos = sorted(
                {
                    (it["properties"]["cmip6:variable_id"], it["properties"]["cmip6:experiment_id"])
                    for it in page["features"]
                }
            )
            print(
                f"catalog, {args.count} items on SQLite, {args.queries} searches of each kind "
                "per run, one client; ms, requests/s, server CPU ms per request"
            )
            results: dict[tuple[str, str], list[dict[str, float]]] = {}
            for pair in range(args.pairs):
                for name, _ in _order(trees, pair):
                    base, proc = servers[name]
                    load = _load_avg()
                    for kind, calls in _requests(base, combos, args.queries).items():
                        r = _timed(client, proc, calls)
                        results.setdefault((name, kind), []).append(r)
                        print(
                            f"pair {pair + 1} {name:8} {kind:12} p50 {r['p50']:7.2f} "
                            f"p95 {r['p95']:7.2f} {r['rps']:7.1f}/s cpu {r['cpu']:6.2f}  "
                            f"load {load}",
                            flush=True,
                        )
            if args.alternate:
                _alternate(client, servers, trees, combos, args.alternate)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nmedian [min-max] over the runs")
    kinds = dict.fromkeys(kind for _, kind in results)
    for kind in kinds:
        for name, _ in trees:
            rs = results[(name, kind)]
            figures = ("p50", "p95", "rps", "cpu")
            print(
                f"{kind:12} {name:8} "
                + "  ".join(f"{m} {_spread([r[m] for r in rs])}" for m in figures)
            )


# --------------------------------------------------------------------------- zarr

ZARR_LINE = re.compile(
    r"^(?P<label>xpublish\S*.*?|strato /\S+ \(v\d\))\s+(?P<mbps>[\d.]+) MB/s .*?"
    r"server CPU median (?P<cpu>[\d.]+) s"
)


def zarr(args: argparse.Namespace, trees: Sequence[Tree]) -> None:
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for pair in range(args.pairs):
        for name, tree in _order(trees, pair):
            load = _load_avg()
            argv = [sys.executable, str(HERE / "zarr_serving.py"), "--quick"]
            argv += ["--rounds", str(args.rounds), "--server-src", str(tree / "src")]
            for setting in SETTINGS.get(name, []):
                argv += ["--setting", setting]
            t0 = time.perf_counter()
            r = subprocess.run(argv, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
                raise SystemExit(f"zarr_serving.py failed for {name} ({r.returncode})")
            got = [m for line in r.stdout.splitlines() if (m := ZARR_LINE.match(line))]
            for m in got:
                label = m["label"].strip()
                results.setdefault((name, label), []).append((float(m["mbps"]), float(m["cpu"])))
            print(
                f"pair {pair + 1} {name:8} "
                + "  ".join(f"{m['label'].strip()}: {m['mbps']} MB/s cpu {m['cpu']} s" for m in got)
                + f"  ({time.perf_counter() - t0:.0f} s, load {load})",
                flush=True,
            )
    print("\nMB/s and server CPU s per read: median [min-max] over the runs")
    labels = dict.fromkeys(label for _, label in results)
    for label in labels:
        for name, _ in trees:
            rs: list[Any] = results.get((name, label), [])
            if rs:
                print(
                    f"{label:24} {name:8} MB/s {_spread([x for x, _ in rs])}  "
                    f"cpu {_spread([c for _, c in rs])}"
                )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=("catalog", "zarr"))
    parser.add_argument(
        "--tree",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a checkout whose src/ serves (twice or more; the first loads the catalog)",
    )
    parser.add_argument(
        "--tree-setting",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "KEY=VALUE"),
        help="a server setting for that tree only, e.g. after heap.limit_allocator=false",
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--alternate",
        type=int,
        default=0,
        metavar="N",
        help="catalog: then N requests of each kind alternating between the servers",
    )
    parser.add_argument("--rounds", type=int, default=5, help="zarr: reads of each endpoint")
    args = parser.parse_args(argv)
    trees: list[Tree] = []
    for spec in args.tree:
        name, sep, path = spec.partition("=")
        if not sep or not (Path(path) / "src" / "strato").is_dir():
            raise SystemExit(f"--tree {spec!r}: expected NAME=PATH of a checkout with src/strato")
        trees.append((name, Path(path).resolve()))
    for name, setting in args.tree_setting:
        SETTINGS.setdefault(name, []).append(setting)
    described = ", ".join(
        f"{n}={p}{''.join(' ' + s for s in SETTINGS.get(n, []))}" for n, p in trees
    )
    print(f"trees: {described}; load now {_load_avg()}")
    (catalog if args.bench == "catalog" else zarr)(args, trees)


if __name__ == "__main__":
    main()
