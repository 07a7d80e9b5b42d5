"""`strato consumer` runs a node's consumer in the foreground; `strato generate` makes
realistic CMIP6/CORDEX items and prints them or publishes them as create events."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strato import heap

if TYPE_CHECKING:
    from strato.bus import Bus
    from strato.catalog.ingest.consumer import Consumer
    from strato.catalog.model.topics import Strategy
    from strato.settings import Settings

# Events per publish_many call: large enough for throughput, small enough to show progress.
PUBLISH_BATCH = 500
# A publisher trickling events waits this long between two, at random.
MAX_DELAY = 0.05
REQUESTER_CLIENT_ID = "strato-generate"
_NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_COLLECTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHOWN_TOPICS = 5


def register(app: typer.Typer) -> None:
    app.command("consumer")(consumer)
    app.command("generate")(generate)


# --- strato consumer ----------------------------------------------------------------------


def consumer(
    ctx: typer.Context,
    node: Annotated[
        str | None,
        typer.Option("--node", help="Name of this node (and its default consumer group)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Consumer group; default the catalog's group setting or the node."),
    ] = None,
    topics: Annotated[
        str | None,
        typer.Option(
            help="Regular expression of the topics to consume; default every event topic "
            "of the topic strategy. The error topic is never consumed."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, max=10_000, help="Most events applied in one transaction."),
    ] = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning/--from-now",
            help="Where a new group starts: the first event on the bus, or the next one "
            "published. A group that has consumed before goes on where it stopped.",
        ),
    ] = True,
) -> None:
    """Consume this node's events into its catalog until SIGINT or SIGTERM."""
    from strato.catalog.ingest.consumer import consumer_from_settings
    from strato.catalog.store import ItemStore
    from strato.cli import state
    from strato.context import Context
    from strato.logs import configure_logging

    settings = state(ctx).settings(**({"node_name": node} if node is not None else {}))
    c = Context.open(settings)
    try:
        bus = c.bus
        # Built before anything is touched, so a bad group or pattern fails at once.
        worker = consumer_from_settings(
            settings,
            ItemStore(c.sessions),
            bus,
            group=group,
            topics=topics,
            batch_size=batch_size,
            from_beginning=from_beginning,
        )
        configure_logging(settings.log)
        c.migrate()
        typer.echo(
            f"consumer of node {worker.node_name!r}: group {worker.group}, topics "
            f"{worker.topics}, errors to {worker.error_topic}, bus {_bus_shown(settings)}, "
            f"batches of up to {worker.batch_size}"
        )
        sys.stdout.flush()
        heap.settle(settings.heap)
        started = time.monotonic()
        asyncio.run(_consume(worker, bus))
        typer.echo(_summary(worker, time.monotonic() - started))
    finally:
        c.close()


async def _consume(worker: Consumer, bus: Bus) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with bus:
            await worker.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _summary(worker: Consumer, seconds: float) -> str:
    s = worker.stats
    return (
        f"consumer of node {worker.node_name!r} stopped after {seconds:.1f} s: "
        f"{s.messages} events in {s.batches} batches; {s.applied} applied, "
        f"{s.duplicates} duplicates, {s.rejected} rejected ({s.invalid} invalid), "
        f"{s.failed} failed"
    )


def _bus_shown(settings: Settings) -> str:
    url = settings.bus.url
    if url is None or not url.strip():
        return f"embedded {settings.data_dir / 'bus.db'}"
    from strato.redact import mask_url

    return mask_url(url.strip())


# --- strato generate ----------------------------------------------------------------------


def generate(
    ctx: typer.Context,
    count: Annotated[int, typer.Argument(min=0, help="How many items.")],
    node: Annotated[
        str, typer.Option(help="Node said to serve the files: east or west (or any host name).")
    ] = "east",
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Publish one create event per item on the bus, or print the items as JSON lines.",
        ),
    ] = False,
    delay: Annotated[
        bool,
        typer.Option(
            "--delay/--no-delay",
            help="Wait 0-50 ms at random between events, as a publisher would.",
        ),
    ] = False,
    project: Annotated[str, typer.Option(help="CMIP6 or CORDEX.")] = "CMIP6",
    seed: Annotated[int, typer.Option(help="The same seed gives the same items.")] = 0,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Collection id; default the project.")
    ] = None,
) -> None:
    """Generate realistic CMIP6 or CORDEX STAC items; print them or publish them."""
    from strato.catalog.demo.generator import PROJECTS, generate_items
    from strato.cli import state
    from strato.errors import InvalidInput

    wanted = project.upper()
    if wanted not in PROJECTS:
        raise InvalidInput(f"unknown project {project!r}: one of {', '.join(PROJECTS)}")
    if not _NODE_NAME.fullmatch(node):
        raise InvalidInput(
            f"node name {node!r} is not valid: letters, digits and '-', like east or west"
        )
    collection_id = wanted if collection is None else collection
    if not _COLLECTION_ID.fullmatch(collection_id):
        raise InvalidInput(
            f"collection id {collection_id!r} is not valid: 1-128 letters, digits, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    items = generate_items(count, project=wanted, seed=seed, node=node)
    if collection_id != wanted:
        items = (_in_collection(item, wanted, collection_id) for item in items)
    if not publish:
        _print_items(items, count, delay=delay)
        return
    settings = state(ctx).settings()
    # Thousands of events go through this process's heap: as in the services, start-up
    # objects are left out of the garbage collector's passes.
    heap.settle(settings.heap)
    published = asyncio.run(_publish(settings, items, count, collection_id, delay=delay))
    typer.echo(published)


def _in_collection(item: dict[str, Any], project: str, collection_id: str) -> dict[str, Any]:
    item["collection"] = collection_id
    old, new = f"/collections/{project}", f"/collections/{collection_id}"
    for link in item.get("links", []):
        href = link.get("href")
        if isinstance(href, str) and (href.endswith(old) or f"{old}/" in href):
            link["href"] = href.replace(old, new, 1)
    return item


def _progress(count: int, unit: str) -> Any:
    from tqdm import tqdm

    shown = sys.stderr.isatty() or count >= 1000
    return tqdm(total=count, unit=unit, file=sys.stderr, disable=not shown, mininterval=0.5)


def _pause() -> float:
    # Jitter to look like a publisher, not anything secret.
    import random

    return random.uniform(0, MAX_DELAY)  # noqa: S311


def _print_items(items: Iterable[dict[str, Any]], count: int, *, delay: bool) -> None:
    out = sys.stdout
    try:
        with _progress(count, "item") as bar:
            for item in items:
                if delay:
                    time.sleep(_pause())
                out.write(json.dumps(item, separators=(",", ":")) + "\n")
                bar.update(1)
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush of
        # stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        raise typer.Exit(1) from None


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _publish(
    settings: Settings,
    items: Iterable[dict[str, Any]],
    count: int,
    collection_id: str,
    *,
    delay: bool,
) -> str:
    from strato.bus import open_bus
    from strato.catalog.ingest.publisher import EventPublisher
    from strato.catalog.model.events import create_event
    from strato.catalog.model.topics import topic_for_event
    from strato.errors import Unavailable

    bus_url, strategy = _target(settings)
    request_id = str(uuid.uuid4())
    requester = {
        "client_id": REQUESTER_CLIENT_ID,
        "iss": settings.base_url,
        "sub": settings.node_name,
    }
    topics: Counter[str] = Counter()
    bus = open_bus(bus_url, settings.data_dir)
    started = time.monotonic()
    try:
        await bus.start()
    except Unavailable as exc:
        raise Unavailable(
            f"{exc.detail}: start it, or point STRATO_BUS_URL at one that runs"
        ) from None
    async with bus:
        publisher = EventPublisher(bus, strategy)
        with _progress(count, "event") as bar:
            # One at a time when trickling, so each event is on the bus before the pause.
            for batch in _batches(items, 1 if delay else PUBLISH_BATCH):
                if delay:
                    await asyncio.sleep(_pause())
                events = [
                    create_event(collection_id, item, requester=requester, request_id=request_id)
                    for item in batch
                ]
                await publisher.publish(events)
                topics.update(topic_for_event(e, strategy).topic for e in events)
                bar.update(len(events))
    seconds = time.monotonic() - started
    total = sum(topics.values())
    rate = total / seconds if seconds > 0 else 0.0
    return (
        f"published {total} create events to {_topics_shown(topics)} "
        f"(request id {request_id}) in {seconds:.1f} s: {rate:.0f} events/s"
    )


def _target(settings: Settings) -> tuple[str | None, Strategy]:
    """The bus and topic strategy to publish with: the configured ones, or else those of
    the playground running in the data directory, so it is found without configuration."""
    from strato.catalog.demo import playground

    if settings.bus.url is None or not settings.bus.url.strip():
        found = playground.running(settings.data_dir / "playground")
        if found is not None and found.topic_strategy in ("single", "drs"):
            strategy: Strategy = "drs" if found.topic_strategy == "drs" else "single"
            return found.bus_url, strategy
    from strato.catalog.settings import CatalogSettings

    return settings.bus.url, CatalogSettings.of(settings).topic_strategy


def _topics_shown(topics: Counter[str]) -> str:
    if not topics:
        return "no topic"
    if len(topics) == 1:
        return f"topic {next(iter(topics))}"
    shown = ", ".join(f"{name} ({n})" for name, n in topics.most_common(_SHOWN_TOPICS))
    more = len(topics) - _SHOWN_TOPICS
    return f"{len(topics)} topics: {shown}" + (f" and {more} more" if more > 0 else "")
