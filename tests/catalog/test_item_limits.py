"""Items larger than ``catalog.max_item_bytes``: refused by transactions (413 naming the
limit), and, arriving as events from the bus, sent to the error topic with the reason and
never applied, whoever published them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from strato.bus import Bus, open_bus
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.consumer import consumer_from_settings
from strato.catalog.ingest.publisher import EventPublisher
from strato.catalog.model.events import SINGLE_TOPIC, create_event, patch_event
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import ItemStore
from strato.db import create_engine, session_factory, upgrade
from strato.errors import NotFound
from strato.settings import Settings
from tests.catalog.test_stac_transactions import Node, _start
from tests.helpers import assert_problem

LIMIT = 16 * 1024
WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}


def padded(item: dict[str, Any], size: int) -> dict[str, Any]:
    """``item`` with a description that makes it about ``size`` bytes of JSON."""
    return {**item, "properties": {**item["properties"], "description": "x" * size}}


# --- transactions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from _start(tmp_path_factory, max_item_bytes=LIMIT)


def test_a_transaction_with_an_item_beyond_the_limit_is_413(node: Node) -> None:
    small, large = generate_items(2, seed=77)
    with httpx.Client(base_url=node.url, headers=node.publish, timeout=30) as http:
        r = http.post("/stac/collections/CMIP6/items", json=padded(large, 2 * LIMIT))
        assert_problem(r, 413, "larger than 16,384 bytes, the most this node accepts")
        both = {"type": "FeatureCollection", "features": [small, padded(large, 2 * LIMIT)]}
        r = http.post("/stac/collections/CMIP6/items", json=both)
        problem = assert_problem(r, 413, "features[1]: the item is")
        assert problem["errors"][0]["field"] == "features[1]"
        # Nothing of a refused request was published: the small item never appears.
        r = http.post("/stac/collections/CMIP6/items", json=small)
        assert r.status_code == 202, r.text
        r = http.put(f"/stac/collections/CMIP6/items/{small['id']}", json=padded(small, 2 * LIMIT))
        assert_problem(r, 413, "16,384 bytes")


# --- events from the bus ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ItemStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'items.db'}")
    upgrade(engine)
    yield ItemStore(session_factory(engine))
    engine.dispose()


@pytest_asyncio.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    async with open_bus(f"sqlite:///{tmp_path / 'bus.db'}", tmp_path) as started:
        yield started


async def errors_of(bus: Bus) -> list[dict[str, Any]]:
    subscription = await bus.subscribe("reader", topics=["esgf.errors"])
    found: list[dict[str, Any]] = []
    while messages := await subscription.fetch(100, timeout=0.5):
        found.extend(json.loads(m.value) for m in messages)
        await subscription.ack(messages)
    await subscription.close()
    return found


@pytest.mark.asyncio
async def test_oversize_events_go_to_the_error_topic_and_are_never_applied(
    tmp_path: Path, store: ItemStore, bus: Bus
) -> None:
    ok, huge, just_over, grown = generate_items(4, seed=78)
    events = [
        create_event("CMIP6", ok, requester=WHO),
        # Far beyond the limit: refused before it is even decoded.
        create_event("CMIP6", padded(huge, 1024 * 1024), requester=WHO),
        # Just beyond: read, and refused by the applier.
        create_event("CMIP6", padded(just_over, LIMIT), requester=WHO),
        create_event("CMIP6", grown, requester=WHO),
        # A patch that would make an item larger than the limit.
        patch_event(
            "CMIP6",
            grown["id"],
            {"properties": {"description": "y" * LIMIT}},
            requester=WHO,
        ),
    ]
    await EventPublisher(bus).publish(events)
    settings = Settings(data_dir=tmp_path, catalog=CatalogSettings(max_item_bytes=LIMIT))
    consumer = consumer_from_settings(settings, store, bus, fetch_timeout=0.3)
    while await consumer.run_once(0.5):
        pass
    await consumer.close()

    assert store.get_item("CMIP6", ok["id"]) == ok
    assert store.get_item("CMIP6", grown["id"]) == grown  # unpatched
    for refused in (huge, just_over):
        with pytest.raises(NotFound):
            store.get_item("CMIP6", refused["id"])

    errors = await errors_of(bus)
    by_event = {e["metadata"]["event_id"]: e for e in errors}
    assert set(by_event) == {e.metadata.event_id for e in events[1:3] + events[4:]}
    for event in events[1:3] + events[4:]:
        reported = by_event[event.metadata.event_id]
        assert reported["error"]["status"] == 413
        assert reported["error"]["title"] == "item-too-large"
        assert "16,384 bytes" in reported["error"]["detail"]
        assert reported["data"]["payload"]["item_id"] == event.item_id
        # The error topic carries the envelope, not what was refused for its size.
        assert len(json.dumps(reported)) < LIMIT
    assert "event is 1,0" in by_event[events[1].metadata.event_id]["error"]["detail"]


def test_the_default_item_limit_is_1_mib() -> None:
    assert CatalogSettings().max_item_bytes == 1024 * 1024
    assert SINGLE_TOPIC == "esgf.events"
