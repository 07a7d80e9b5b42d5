"""The node consumer on real buses (embedded log, NATS JetStream) and real databases
(SQLite, PostgreSQL, MariaDB): what it applies, what it reports to the error topic."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from strato.bus import Bus, open_bus
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.consumer import Consumer, consumer_from_settings
from strato.catalog.ingest.consumer_stats import describe
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.model.events import (
    SINGLE_TOPIC,
    Event,
    create_event,
    patch_event,
    replication_event,
    retraction_event,
    update_event,
)
from strato.catalog.model.topics import DEFAULT_TOPICS, subscription_pattern
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.db import create_engine, session_factory, upgrade
from strato.errors import InvalidInput
from strato.settings import Settings
from tests.bus.conftest import (  # noqa: F401 (tansu: a fixture)
    KAFKA_TEST_OPTIONS,
    NATS,
    _delete_stream,
    _jetstream_ready,
    tansu,
)
from tests.conftest import need, reachable

WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}
ERRORS = "esgf.errors"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


# --- fixtures and helpers, shared with the other consumer tests -----------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[ItemStore]:
    engine = create_engine(database_url)
    upgrade(engine)
    yield ItemStore(session_factory(engine))
    engine.dispose()


async def nats_bus_url() -> tuple[str, str]:
    """(bus URL, stream) of a fresh stream on the local NATS server; skips without one."""
    host, port = NATS
    url = f"nats://{host}:{port}"
    problem = await _jetstream_ready(url) if reachable(host, port) else "nothing answers"
    need("NATS JetStream", problem is None, f"{url}: {problem}")
    token = secrets.token_hex(4)
    stream = f"STRATO_TEST_{token}"
    return f"{url}?stream={stream}&prefix=strato_test_{token}&ack_wait=5", stream


@pytest_asyncio.fixture(params=["nats", "kafka"])
async def remote_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    """A started NATS or Kafka bus with nothing on it yet. Kafka's broker lives for the
    session, so only one test may use its fixed topic names (esgf.events, esgf.errors)."""
    stream = None
    if request.param == "nats":
        url, stream = await nats_bus_url()
    else:
        url = f"kafka://{request.getfixturevalue('tansu')}?{KAFKA_TEST_OPTIONS}"
    bus = open_bus(url, tmp_path)
    async with bus:
        yield bus
    if stream is not None:
        await _delete_stream(url.split("?")[0], stream)


@pytest_asyncio.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    """The embedded bus, started."""
    async with open_bus(f"sqlite:///{tmp_path / 'bus.db'}", tmp_path) as started:
        yield started


def make_consumer(store: ItemStore, bus: Bus, **options: Any) -> Consumer:
    settings: dict[str, Any] = {
        "group": "node-a",
        "topics": DEFAULT_TOPICS["single"],
        "error_topic": ERRORS,
        "batch_size": 50,
        "retries": 1,
        "retry_backoff": 0.01,
        "node_name": "node-a",
        "fetch_timeout": 0.3,
    }
    settings.update(options)
    return Consumer(store, bus, **settings)


async def drain(consumer: Consumer, *, idle: float = 0.5) -> int:
    """Run batches until a fetch brings nothing; how many messages were handled."""
    total = 0
    while True:
        handled = await consumer.run_once(idle)
        if not handled:
            return total
        total += handled


async def read_topic(bus: Bus, topic: str, *, idle: float = 0.5) -> list[dict[str, Any]]:
    """Everything on ``topic``, read by a group of its own."""
    subscription = await bus.subscribe(f"reader-{secrets.token_hex(4)}", topics=[topic])
    found: list[dict[str, Any]] = []
    try:
        while True:
            messages = await subscription.fetch(500, timeout=idle)
            if not messages:
                return found
            found.extend(json.loads(m.value) for m in messages)
            await subscription.ack(messages)
    finally:
        await subscription.close()


async def publish(bus: Bus, events: list[Event]) -> None:
    await EventPublisher(bus).publish(events)


def assert_rfc9457(error_body: dict[str, Any], event: Event, status: int, title: str) -> None:
    problem = error_body["error"]
    assert problem.keys() >= PROBLEM_MEMBERS
    assert problem["status"] == status
    assert problem["title"] == title
    assert problem["instance"] == f"{event.metadata.request_id}:{event.metadata.event_id}"
    assert problem["node"] == "node-a"
    assert "Traceback" not in problem["detail"]
    # The original event, as it was sent, beside the problem.
    original = json.loads(event.to_json())
    assert error_body["metadata"] == original["metadata"]
    assert error_body["data"]["payload"]["method"] == original["data"]["payload"]["method"]
    assert error_body["data"]["payload"]["item_id"] == event.item_id


def alternate_key(item: dict[str, Any]) -> str:
    return str(next(iter(item["assets"])))


# --- applying -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_applies_creates_patches_and_updates(store: ItemStore, bus: Bus) -> None:
    items = list(generate_items(6, seed=7))
    ids = [it["id"] for it in items]
    changed = copy.deepcopy(items[2])
    changed["properties"]["title"] = "replaced whole"
    key = alternate_key(items[1])
    replica = {"href": "https://data.west.example/file.nc", "roles": ["data"]}
    events = [
        *(create_event("CMIP6", it, requester=WHO) for it in items),
        retraction_event("CMIP6", ids[0], requester=WHO),
        replication_event("CMIP6", ids[1], {key: {"west": replica}}, requester=WHO),
        update_event("CMIP6", changed, requester=WHO),
        patch_event("CMIP6", ids[3], {"properties": {"title": "merged"}}, requester=WHO),
    ]
    await publish(bus, events)
    # Batches of 4: the events of one item land in different batches, in order.
    consumer = make_consumer(store, bus, batch_size=4)
    assert await drain(consumer) == len(events)

    assert store.count("CMIP6") == 6
    assert store.item_flags("CMIP6", ids[0]) == (False, True)
    assert store.get_item("CMIP6", ids[0])["assets"] == {}
    alternate = store.get_item("CMIP6", ids[1])["assets"][key]["alternate"]
    assert alternate == {"west": {"alternate:name": "west", **replica}}
    assert store.get_item("CMIP6", ids[2])["properties"]["title"] == "replaced whole"
    assert store.get_item("CMIP6", ids[3])["properties"]["title"] == "merged"
    assert store.get_item("CMIP6", ids[5]) == items[5]
    status = consumer.status()
    assert (status["applied"], status["rejected"], status["failed"]) == (10, 0, 0)
    assert status["batches"] == 3
    assert await read_topic(bus, ERRORS) == []
    await consumer.close()


@pytest.mark.asyncio
async def test_rejections_and_malformed_events_go_to_the_error_topic(
    store: ItemStore, bus: Bus
) -> None:
    await check_rejections(store, bus)


@pytest.mark.asyncio
async def test_rejections_on_nats_and_kafka(tmp_path: Path, remote_bus: Bus) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    try:
        await check_rejections(ItemStore(session_factory(engine)), remote_bus)
    finally:
        engine.dispose()


async def check_rejections(store: ItemStore, bus: Bus) -> None:
    first, second = generate_items(2, seed=5)
    create = create_event("CMIP6", first, requester=WHO)
    again = create_event("CMIP6", first, requester=WHO)
    missing = retraction_event("CMIP6", "CMIP6.no.such.item", requester=WHO)
    later = create_event("CMIP6", second, requester=WHO)
    retract = retraction_event("CMIP6", first["id"], requester=WHO)
    no_event_id = json.loads(later.to_json())
    del no_event_id["metadata"]["event_id"]

    await publish(bus, [create, again, missing])
    await bus.publish(SINGLE_TOPIC, "broken", b'{"data": {not json')
    await bus.publish(SINGLE_TOPIC, "incomplete", json.dumps(no_event_id).encode())
    await publish(bus, [later, retract])

    consumer = make_consumer(store, bus)
    assert await drain(consumer) == 7

    # What came after the bad events was applied.
    assert store.count() == 2
    assert store.item_flags("CMIP6", first["id"]) == (False, True)
    assert store.get_item("CMIP6", second["id"]) == second

    errors = await read_topic(bus, ERRORS)
    assert len(errors) == 4, errors
    by_title = {e["error"]["title"]: e for e in errors if "metadata" in e}
    conflict = by_title["item-already-exists"]
    assert_rfc9457(conflict, again, 409, "item-already-exists")
    assert conflict["data"]["payload"]["item"] == first
    assert first["id"] in conflict["error"]["detail"]
    assert_rfc9457(by_title["item-not-found"], missing, 404, "item-not-found")

    [malformed] = [e for e in errors if "original" in e]
    assert malformed["original"] == '{"data": {not json'
    assert malformed["error"]["status"] == 400
    assert malformed["error"]["title"] == "invalid-event"
    assert "not valid JSON" in malformed["error"]["detail"]
    assert malformed["error"]["instance"] == "unknown:unknown"
    incomplete = by_title["invalid-event"]
    assert incomplete["error"]["status"] == 400
    assert "metadata.event_id" in incomplete["error"]["detail"]
    assert {"field": "metadata.event_id", "message": "Field required"} in incomplete["error"][
        "errors"
    ]
    assert incomplete["data"]["payload"]["item"] == no_event_id["data"]["payload"]["item"]

    s = consumer.stats
    assert (s.applied, s.rejected, s.invalid, s.failed) == (3, 4, 2, 0)
    # The outcome of the rejected event is remembered for its request.
    [outcome] = store.outcomes_for_request(again.metadata.request_id)
    assert (outcome.outcome, outcome.status) == ("rejected", 409)

    # Delivered again (the same event): a duplicate, reported once only.
    await publish(bus, [again, create])
    assert await drain(consumer) == 2
    assert consumer.stats.duplicates == 2
    assert len(await read_topic(bus, ERRORS)) == 4
    await consumer.close()


@pytest.mark.asyncio
async def test_the_error_topic_is_never_consumed(tmp_path: Path, bus: Bus) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    store = ItemStore(session_factory(engine))
    kept, stray = generate_items(2, seed=9)
    await EventPublisher(bus).publish([create_event("CMIP6", kept, requester=WHO)])
    # A valid event on the error topic: a node that read it would create the item.
    wrong = create_event("CMIP6", stray, requester=WHO)
    await bus.publish(ERRORS, stray["id"], wrong.to_json())
    await bus.publish("other.topic", "k", b"{}")

    consumer = make_consumer(store, bus, topics=".*")
    await drain(consumer)
    assert store.count() == 1
    assert store.get_item("CMIP6", kept["id"]) == kept
    # What came from other.topic is invalid and reported; the error topic is not read.
    errors = await read_topic(bus, ERRORS)
    assert [e["error"]["title"] for e in errors if "error" in e] == ["invalid-event"]
    await consumer.close()
    engine.dispose()


@pytest.mark.asyncio
async def test_run_stops_gracefully_and_acknowledges(tmp_path: Path, bus: Bus) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    store = ItemStore(session_factory(engine))
    items = list(generate_items(120, seed=2))
    await publish(bus, [create_event("CMIP6", it, requester=WHO) for it in items])

    consumer = make_consumer(store, bus, batch_size=25)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + 60
    while store.count() < len(items) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert consumer.status()["running"] is True
    stop.set()
    await asyncio.wait_for(task, 30)
    assert store.count() == len(items)
    assert consumer.status()["running"] is False
    assert consumer.stats.applied == len(items)

    # Everything was acknowledged and the group released: a new member finds nothing.
    successor = make_consumer(store, bus)
    assert await successor.run_once(0.5) == 0
    await successor.close()
    engine.dispose()


@pytest.mark.asyncio
async def test_a_new_group_from_now_skips_what_was_published_before(
    tmp_path: Path, bus: Bus
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    store = ItemStore(session_factory(engine))
    old, new = list(generate_items(3, seed=31)), list(generate_items(2, seed=32))
    await publish(bus, [create_event("CMIP6", it, requester=WHO) for it in old])
    consumer = make_consumer(store, bus, group="late", from_beginning=False)
    assert await drain(consumer) == 0
    await publish(bus, [create_event("CMIP6", it, requester=WHO) for it in new])
    assert await drain(consumer) == 2
    assert store.count() == 2
    assert store.get_item("CMIP6", new[0]["id"]) == new[0]
    await consumer.close()
    engine.dispose()


# --- configuration ----------------------------------------------------------------------------


def test_settings_give_topics_group_and_limits(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}")
    store = ItemStore(session_factory(engine))
    bus = open_bus(None, tmp_path)
    settings = Settings(data_dir=tmp_path, node_name="east")
    single = consumer_from_settings(settings, store, bus)
    assert (single.group, single.topics, single.error_topic) == ("east", r"esgf\.events", ERRORS)
    assert single.batch_size == settings.catalog.batch_size

    drs = Settings(
        data_dir=tmp_path,
        node_name="west",
        catalog=CatalogSettings(topic_strategy="drs", group="g1", batch_size=7, retries=0),
    )
    consumer = consumer_from_settings(drs, store, bus)
    assert (consumer.group, consumer.batch_size, consumer.retries) == ("g1", 7, 0)
    pattern = re.compile(rf"(?:{consumer.pattern})\Z")
    assert pattern.match("CMIP6.historical.MIROC6")
    assert not pattern.match(SINGLE_TOPIC)
    overridden = consumer_from_settings(drs, store, bus, group="g2", topics="a\\.b", batch_size=3)
    assert (overridden.group, overridden.topics, overridden.batch_size) == ("g2", "a\\.b", 3)

    # The error topic is left out of any pattern, even one that names it.
    everything = re.compile(rf"(?:{subscription_pattern('.*', ERRORS)})\Z")
    assert everything.match("esgf.events")
    assert not everything.match(ERRORS)
    assert everything.match(ERRORS + ".more")
    # A pattern that cannot take the error topic goes to the bus as given, so a server
    # that filters subjects (NATS) can filter it.
    historical = r"[^.]+\.historical\.[^.]+"
    assert subscription_pattern(historical, ERRORS) == historical

    with pytest.raises(InvalidInput, match="not a regular expression"):
        consumer_from_settings(settings, store, bus, topics="(")
    with pytest.raises(InvalidInput, match="consumer group"):
        consumer_from_settings(settings, store, bus, group="a b")
    with pytest.raises(InvalidInput, match="consumer group"):
        consumer_from_settings(settings, store, bus, group="")
    with pytest.raises(InvalidInput, match="batch size"):
        consumer_from_settings(settings, store, bus, batch_size=0)
    engine.dispose()


def test_describe_gives_one_line_without_sql() -> None:
    from sqlalchemy.exc import OperationalError

    class DriverError(Exception):
        pass

    wrapped = OperationalError("INSERT INTO x VALUES (?)", {"a": 1}, DriverError(1644, "refused"))
    assert describe(wrapped) == "refused"
    multi = OperationalError("SELECT 1", {}, DriverError("first line\nCONTEXT: where"))
    assert describe(multi) == "first line"
    assert describe(ValueError("")) == "ValueError"
