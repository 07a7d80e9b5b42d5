"""Federation ingest: published items until searchable on every node, items/s per node.

Starts the playground (a bus and three node processes: East and West take every event,
Secondary only the historical experiment), publishes N generated CMIP6 items, and
measures the time from the first publish until every node's STAC search counts what
it should. On the embedded bus and, when one answers on 127.0.0.1:4222, on NATS.

The reference, in the same run: the ESGF-Playground consumer's design on the same bus,
database engine and machine. For each event it validates the envelope with the
playground's own models (esgf-playground-utils), asks the STAC server for the
collection, and POSTs the item to a STAC transactions endpoint that writes it in a
transaction of its own. (The playground's server is stac-fastapi on Elasticsearch,
which cannot run here; the endpoint stands in for it with strato's applier, one item
per call, so the comparison is of the designs, not of the databases.) The playground's
own published figure is about 1,000 items per minute.

    python bench/federation_ingest.py [--count 5000] [--reference-count 1000] [--no-nats]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from _serving import serving
from strato import heap
from strato.bus import open_bus
from strato.catalog.demo import playground
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.model.events import Event, create_event, parse_event
from strato.catalog.store import ItemStore
from strato.db import create_engine, session_factory, upgrade
from strato.settings import HeapSettings

GOAL = 2000.0
WHO = {"client_id": "bench", "iss": "https://bench.example", "sub": "bench"}
NATS = ("127.0.0.1", 4222)


def _events(count: int, seed: int) -> tuple[list[Event], int]:
    items = list(generate_items(count, seed=seed))
    historical = sum(1 for it in items if it["properties"]["cmip6:experiment_id"] == "historical")
    events = [create_event("CMIP6", it, requester=WHO) for it in items]
    # The events are this run's input, made before the clock starts. Like strato's own
    # processes (and `strato generate --publish`), the publisher keeps what it holds out
    # of the garbage collector's passes: else full passes walk every event again and
    # again, and about half the publisher's CPU on NATS goes to them.
    heap.settle(HeapSettings())
    return events, historical


async def _publish(url: str, data_dir: Path, events: Sequence[Event], strategy: str) -> None:
    async with open_bus(url, data_dir) as bus:
        publisher = EventPublisher(bus, strategy)  # type: ignore[arg-type]
        for start in range(0, len(events), 1000):
            await publisher.publish(events[start : start + 1000])


def _count(client: httpx.Client, url: str) -> int:
    try:
        r = client.get(f"{url}/stac/search", params={"limit": 1})
        return int(r.json()["numberMatched"]) if r.status_code == 200 else -1
    except (httpx.HTTPError, ValueError, KeyError):
        return -1


def run_federation(bus_url: str | None, count: int, seed: int) -> dict[str, float]:
    events, historical = _events(count, seed)
    want = {"east": count, "west": count, "secondary": historical}
    with tempfile.TemporaryDirectory(prefix="strato-bench-") as tmp:
        where = Path(tmp)
        fed = playground.up(where, bus_url=bus_url, ports=(0, 0, 0))
        try:
            urls = {n.name: n.url for n in fed.nodes}
            done: dict[str, float] = {}
            t0 = time.perf_counter()
            asyncio.run(_publish(fed.bus_url, where, events, fed.topic_strategy))
            published = time.perf_counter() - t0
            deadline = t0 + max(120.0, count / 50)
            with httpx.Client(timeout=10) as client:
                while len(done) < len(urls) and time.perf_counter() < deadline:
                    for name, url in urls.items():
                        if name not in done and _count(client, url) == want[name]:
                            done[name] = time.perf_counter() - t0
                    # Ten looks a second: each is a search on every node, and they share the
                    # two cores with the ingest being measured.
                    time.sleep(0.1)
            if len(done) < len(urls):
                with httpx.Client(timeout=10) as client:
                    held = {name: _count(client, url) for name, url in urls.items()}
                raise SystemExit(f"not every node got its items in time: {held}, want {want}")
        finally:
            playground.down(where)
    return {
        "publish_s": published,
        **{f"{name}_s": t for name, t in done.items()},
        **{f"{name}_rate": want[name] / t for name, t in done.items()},
        "all_s": max(done.values()),
    }


# --- the reference: one event at a time, over HTTP, a transaction each -------------------


def _reference_server(store: ItemStore) -> FastAPI:
    app = FastAPI()
    seen: set[str] = set()

    @app.get("/collections/{collection_id}")
    def collection(collection_id: str) -> dict[str, Any]:
        return {"id": collection_id, "type": "Collection", "known": collection_id in seen}

    @app.post("/collections/{collection_id}/items", status_code=201)
    async def create(collection_id: str, request: Request) -> dict[str, str]:
        item = await request.json()
        event = create_event(collection_id, item, requester=WHO)
        await asyncio.to_thread(apply_events, store, [event])
        seen.add(collection_id)
        return {"id": item["id"]}

    return app


async def _reference_consume(bus_url: str, data_dir: Path, stac: str, count: int) -> None:
    from esgf_playground_utils.models.kafka import KafkaEvent

    async with open_bus(bus_url, data_dir) as bus, httpx.AsyncClient(timeout=5) as client:
        sub = await bus.subscribe("reference", pattern=r"[^.]+\.[^.]+\.[^.]+")
        handled = 0
        while handled < count:
            batch = await sub.fetch(500, timeout=1.0)
            for message in batch:
                event = KafkaEvent.model_validate_json(message.value)
                collection_id = event.data.payload.collection_id
                (await client.get(f"{stac}/collections/{collection_id}")).raise_for_status()
                item = parse_event(message.value).item
                r = await client.post(f"{stac}/collections/{collection_id}/items", json=item)
                r.raise_for_status()
                handled += 1
            # Kafka's auto-commit commits periodically, not per message: per batch here.
            await sub.ack(batch)
        await sub.close()


def run_reference(count: int, seed: int) -> float:
    events, _ = _events(count, seed + 1)
    with tempfile.TemporaryDirectory(prefix="strato-bench-ref-") as tmp:
        where = Path(tmp)
        engine = create_engine(f"sqlite:///{where / 'ref.db'}")
        upgrade(engine)
        store = ItemStore(session_factory(engine))
        bus_url = f"sqlite:///{where / 'bus.db'}"
        with serving(_reference_server(store)) as stac:
            t0 = time.perf_counter()
            asyncio.run(_publish(bus_url, where, events, "drs"))
            asyncio.run(_reference_consume(bus_url, where, stac, count))
            elapsed = time.perf_counter() - t0
        assert store.count() == count, store.count()
        engine.dispose()
    return count / elapsed


def _nats_url() -> str | None:
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(NATS) != 0:
            return None
    token = secrets.token_hex(4)
    return f"nats://{NATS[0]}:{NATS[1]}?stream=BENCH_{token}&prefix=bench_{token}"


async def _drop_stream(url: str) -> None:
    import nats

    stream = url.split("stream=")[1].split("&")[0]
    nc = await nats.connect(url.split("?")[0], connect_timeout=2, allow_reconnect=False)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--reference-count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-nats", action="store_true")
    args = parser.parse_args(argv)

    buses: list[tuple[str, str | None]] = [("embedded", None)]
    nats_url = None if args.no_nats else _nats_url()
    if nats_url:
        buses.append(("nats", nats_url))
    else:
        print("NATS not reachable on 127.0.0.1:4222: embedded bus only", file=sys.stderr)

    print(f"federation ingest: {args.count} CMIP6 items, 3 node processes, 2 cores")
    print(f"{'bus':10} {'publish s':>9} {'east/s':>8} {'west/s':>8} {'second./s':>9} {'all s':>6}")
    worst = float("inf")
    for name, url in buses:
        try:
            r = run_federation(url, args.count, args.seed)
        finally:
            if url and url.startswith("nats"):
                asyncio.run(_drop_stream(url))
        per_node = min(r["east_rate"], r["west_rate"])
        worst = min(worst, per_node)
        print(
            f"{name:10} {r['publish_s']:9.2f} {r['east_rate']:8.0f} {r['west_rate']:8.0f} "
            f"{r['secondary_rate']:9.0f} {r['all_s']:6.2f}"
        )
    reference = run_reference(args.reference_count, args.seed)
    print(
        f"reference (ESGF-Playground consumer design, per-event HTTP + transaction, "
        f"{args.reference_count} items, 1 node): {reference:.0f} items/s"
    )
    print("ESGF-Playground published figure: ~1,000 items/minute = ~17 items/s")
    print(f"ratio strato (slowest full node) / reference: {worst / reference:.1f}x")
    print(f"goal >= {GOAL:.0f} items/s per node: {'met' if worst >= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
