"""STAC transactions: authenticated writes become ESGF events on the node's bus.

The events are read back from the bus itself, by a consumer group of the test's own,
and (with the node's consumer running) the writes are seen applied through the API.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from strato.app import create_app
from strato.auth import Scope
from strato.bus import open_bus
from strato.catalog.demo.generated_collections import collection_for
from strato.catalog.demo.generator import generate_items
from strato.catalog.model.events import SINGLE_TOPIC, parse_event, retraction_patch
from strato.catalog.settings import CatalogSettings
from strato.context import Context
from strato.settings import LogSettings, Settings
from tests.conftest import ThreadedServer
from tests.helpers import assert_problem

PUBLISHER = "pat"


@dataclass
class Node:
    url: str
    settings: Settings
    app: Any
    publish: dict[str, str]
    read_only: dict[str, str]

    def events(self, request_id: str, count: int) -> list[dict[str, Any]]:
        """The events of ``request_id``, read from the bus by a new consumer group."""
        return asyncio.run(_read(self.settings, request_id, count))


async def _read(settings: Settings, request_id: str, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with open_bus(settings.bus.url, settings.data_dir) as bus:
        sub = await bus.subscribe(f"test-{uuid.uuid4().hex}", topics=[SINGLE_TOPIC])
        deadline = time.monotonic() + 20
        while len(found) < count and time.monotonic() < deadline:
            for message in await sub.fetch(timeout=0.5):
                event = message.json()
                if event["metadata"]["request_id"] == request_id:
                    # What a consumer will see: a valid event, checked by the same parser.
                    parse_event(message.value)
                    found.append(event)
        await sub.close()
    return found


def _start(tmp_path_factory: pytest.TempPathFactory, **catalog: Any) -> Iterator[Node]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tx") / "data",
        log=LogSettings(access=False),
        catalog=CatalogSettings(**catalog),
    )
    ctx = Context.open(settings)
    ctx.migrate()
    ctx.identities.create_user(PUBLISHER, password="a-long-password", scopes=[Scope.PUBLISH])
    ctx.identities.create_user("reader", password="another-password", scopes=[Scope.READ])
    publish = ctx.identities.create_token(PUBLISHER, [Scope.PUBLISH]).secret
    read_only = ctx.identities.create_token("reader", [Scope.READ]).secret
    app = create_app(settings, context=ctx)
    publish_h = {"Authorization": f"Bearer {publish}"}
    with ThreadedServer(app) as server:
        node = Node(server.url, settings, app, publish_h, {"Authorization": f"Bearer {read_only}"})
        _wait_connected(node)
        with httpx.Client(base_url=node.url, timeout=30) as http:
            for project in ("CMIP6", "CORDEX"):
                r = http.post("/stac/collections", json=collection_for(project), headers=publish_h)
                assert r.status_code == 201, r.text
        yield node
    ctx.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from _start(tmp_path_factory)


@pytest.fixture(scope="module")
def drs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """Events on ``<mip_era>.<experiment>.<source>`` topics, as in the playground."""
    yield from _start(tmp_path_factory, topic_strategy="drs")


def _wait_connected(node: Node) -> None:
    # The node connects its bus in the background; writes answer 503 until then.
    deadline = time.monotonic() + 20
    while not node.app.state.catalog.connected.is_set():
        assert time.monotonic() < deadline, "the node did not connect its bus"
        time.sleep(0.05)


@pytest.fixture
def http(node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        yield client


# Module-wide, so no two tests write the same items: the node's consumer applies them all.
_SEEDS = itertools.count(1000)


@pytest.fixture
def items() -> Callable[[int], list[dict[str, Any]]]:
    return lambda n: list(generate_items(n, seed=next(_SEEDS)))


def _eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _accepted(r: httpx.Response, node: Node, count: int) -> dict[str, Any]:
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    monitor = f"{node.url}/stac/publications/{body['request_id']}"
    assert body["status"] == "pending"
    assert len(body["event_ids"]) == len(set(body["event_ids"])) == count
    assert body["links"] == [{"rel": "monitor", "type": "application/json", "href": monitor}]
    assert r.headers["location"] == monitor
    return body


# --- who may write ----------------------------------------------------------------------


def test_writes_need_the_publish_scope(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    path = f"/stac/collections/CMIP6/items/{item['id']}"
    calls = [
        lambda h: http.post("/stac/collections/CMIP6/items", json=item, headers=h),
        lambda h: http.put(path, json=item, headers=h),
        lambda h: http.patch(path, json={"properties": {"x": 1}}, headers=h),
        lambda h: http.delete(path, headers=h),
    ]
    for call in calls:
        r = call({})
        assert_problem(r, 401, "publish")
        assert "Bearer" in r.headers["www-authenticate"]
        assert_problem(call({"Authorization": "Bearer strato_wrong"}), 401)
        assert_problem(call(node.read_only), 403, "publish")


# --- create -----------------------------------------------------------------------------


def test_create_puts_one_event_on_the_bus(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    del item["collection"]
    r = http.post("/stac/collections/CMIP6/items", json=item, headers=node.publish)
    body = _accepted(r, node, 1)
    [event] = node.events(body["request_id"], 1)
    assert event["metadata"]["event_id"] == body["event_ids"][0]
    assert event["metadata"]["auth"]["requester_data"] == {
        "client_id": "strato",
        "iss": node.url,
        "sub": PUBLISHER,
    }
    payload = event["data"]["payload"]
    assert payload["method"] == "POST"
    assert payload["collection_id"] == "CMIP6"
    # The collection of the URL is filled in; nothing else changes.
    assert payload["item"] == {**item, "collection": "CMIP6"}


def test_feature_collection_is_one_request_one_event_per_item(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    batch = items(3)
    r = http.post(
        "/stac/collections/CMIP6/items",
        json={"type": "FeatureCollection", "features": batch},
        headers=node.publish,
    )
    body = _accepted(r, node, 3)
    events = node.events(body["request_id"], 3)
    assert sorted(e["metadata"]["event_id"] for e in events) == sorted(body["event_ids"])
    assert sorted(e["data"]["payload"]["item"]["id"] for e in events) == sorted(
        it["id"] for it in batch
    )


def test_invalid_items_are_400_naming_the_json_path(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    broken = copy.deepcopy(item)
    del broken["properties"]["datetime"]
    r = http.post("/stac/collections/CMIP6/items", json=broken, headers=node.publish)
    problem = assert_problem(r, 400, "properties.datetime")
    assert "properties.datetime" in [e["field"] for e in problem["errors"]]

    second = copy.deepcopy(item)
    second["id"] = item["id"] + "-other"
    second["bbox"] = [0, 0, 10]
    r = http.post(
        "/stac/collections/CMIP6/items",
        json={"type": "FeatureCollection", "features": [item, second]},
        headers=node.publish,
    )
    assert_problem(r, 400, "features[1].bbox")

    r = http.post(
        "/stac/collections/CMIP6/items",
        json={"type": "FeatureCollection", "features": [item, item]},
        headers=node.publish,
    )
    assert_problem(r, 400, "features[1].id")
    for body in ({"type": "FeatureCollection", "features": []}, {"type": "FeatureCollection"}):
        assert_problem(
            http.post("/stac/collections/CMIP6/items", json=body, headers=node.publish),
            400,
            "features",
        )
    r = http.post("/stac/collections/CMIP6/items", json=[item], headers=node.publish)
    assert_problem(r, 422, "body")
    r = http.post(
        "/stac/collections/CMIP6/items",
        content=b"{not json",
        headers={**node.publish, "Content-Type": "application/json"},
    )
    assert_problem(r, 422)


def test_collection_of_the_url_and_of_the_item_must_agree(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    r = http.post("/stac/collections/CORDEX/items", json=item, headers=node.publish)
    assert_problem(r, 400, "collection")
    r = http.put(f"/stac/collections/CORDEX/items/{item['id']}", json=item, headers=node.publish)
    assert_problem(r, 400, "collection")
    r = http.post(
        "/stac/collections/CORDEX/items",
        json={"type": "FeatureCollection", "features": [item]},
        headers=node.publish,
    )
    assert_problem(r, 400, "features[0].collection")


# --- update, patch, retract -------------------------------------------------------------


def test_put_is_an_update_event_for_the_same_id(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    path = f"/stac/collections/CMIP6/items/{item['id']}"
    assert_problem(http.put(path + "-other", json=item, headers=node.publish), 400, "differs")
    body = _accepted(http.put(path, json=item, headers=node.publish), node, 1)
    [event] = node.events(body["request_id"], 1)
    payload = event["data"]["payload"]
    assert payload["method"] == "PUT"
    assert payload["item_id"] == item["id"]
    assert payload["item"] == item


def _applied(node: Node, http: httpx.Client, item: dict[str, Any]) -> str:
    """Publish ``item`` to CMIP6 and wait until this node applied it; its path."""
    path = f"/stac/collections/CMIP6/items/{item['id']}"
    _accepted(http.post("/stac/collections/CMIP6/items", json=item, headers=node.publish), node, 1)
    _eventually(lambda: http.get(path).status_code == 200, "the created item never appeared")
    return path


def test_patch_by_content_type(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    path = _applied(node, http, items(1)[0])
    merge = {"properties": {"title": "renamed"}}
    ops = [{"op": "replace", "path": "/properties/title", "value": "renamed"}]
    sent = [
        (merge, "application/merge-patch+json"),
        (ops, "application/json-patch+json"),
        (merge, "application/json"),
        (ops, "application/json"),
    ]
    for patch, media in sent:
        r = http.patch(path, json=patch, headers={**node.publish, "Content-Type": media})
        body = _accepted(r, node, 1)
        [event] = node.events(body["request_id"], 1)
        assert event["data"]["payload"]["method"] == "PATCH"
        assert event["data"]["payload"]["patch"] == patch


def test_bad_patches_are_4xx(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    path = f"/stac/collections/CMIP6/items/{items(1)[0]['id']}"
    merge = {"properties": {"title": "renamed"}}

    def patch(body: Any, media: str) -> httpx.Response:
        return http.patch(path, json=body, headers={**node.publish, "Content-Type": media})

    assert_problem(patch(merge, "application/json-patch+json"), 400, "list")
    assert_problem(patch([{"op": "add"}], "application/merge-patch+json"), 400, "object")
    assert_problem(patch([{"op": "jump", "path": "/x"}], "application/json-patch+json"), 400, "[0]")
    assert_problem(
        patch([{"op": "add", "path": "x", "value": 1}], "application/json"), 400, "[0].path"
    )
    assert_problem(patch({"id": "another"}, "application/merge-patch+json"), 400, "id")
    assert_problem(
        patch([{"op": "remove", "path": "/collection"}], "application/json"), 400, "[0].path"
    )
    assert_problem(patch("just text", "application/json"), 400)
    r = http.patch(
        path, content=b"title=renamed", headers={**node.publish, "Content-Type": "text/plain"}
    )
    assert_problem(r, 415, "merge-patch")


def test_delete_is_an_esgf_retraction(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    item_id = item["id"]
    _applied(node, http, item)
    r = http.delete(f"/stac/collections/CMIP6/items/{item_id}", headers=node.publish)
    body = _accepted(r, node, 1)
    [event] = node.events(body["request_id"], 1)
    payload = event["data"]["payload"]
    assert (payload["method"], payload["item_id"]) == ("PATCH", item_id)
    assert payload["patch"] == retraction_patch()


def test_long_ids_are_refused_before_publishing(node: Node, http: httpx.Client) -> None:
    r = http.delete(f"/stac/collections/CMIP6/items/{'x' * 300}", headers=node.publish)
    assert_problem(r, 400, "item_id")


# --- the node's consumer applies what was published -------------------------------------


def test_published_items_are_applied_and_retracted_through_the_stream(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    path = f"/stac/collections/CMIP6/items/{item['id']}"
    created = _accepted(
        http.post("/stac/collections/CMIP6/items", json=item, headers=node.publish), node, 1
    )
    _eventually(lambda: http.get(path).status_code == 200, "the created item never appeared")
    assert http.get(path).json()["properties"] == item["properties"]
    monitor = http.get(created["links"][0]["href"])
    assert monitor.status_code == 200
    _accepted(http.delete(path, headers=node.publish), node, 1)
    _eventually(
        lambda: http.get(path).json()["properties"].get("retracted") is True,
        "the retraction was never applied",
    )
    kept = http.get(path).json()
    assert kept["properties"]["latest"] is False
    assert kept["assets"] == {}


# --- collections: created through their own route; items only into existing ones ----------


def test_collections_are_created_with_the_publish_scope(node: Node, http: httpx.Client) -> None:
    collection = {**collection_for("CMIP6"), "id": "tx-new", "title": "A new collection"}
    assert_problem(http.post("/stac/collections", json=collection), 401, "publish")
    assert_problem(http.post("/stac/collections", json=collection, headers=node.read_only), 403)
    assert http.get("/stac/collections/tx-new").status_code == 404

    r = http.post("/stac/collections", json=collection, headers=node.publish)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{node.url}/stac/collections/tx-new"
    assert r.json()["title"] == "A new collection"
    shown = http.get("/stac/collections/tx-new").json()
    assert (shown["title"], shown["extent"]) == ("A new collection", collection["extent"])

    assert_problem(http.post("/stac/collections", json=collection, headers=node.publish), 409)
    broken = {**collection, "id": "tx-broken"}
    del broken["extent"]
    assert_problem(http.post("/stac/collections", json=broken, headers=node.publish), 400, "extent")
    long_id = {**collection, "id": "x" * 200}
    assert_problem(http.post("/stac/collections", json=long_id, headers=node.publish), 400, "id")


def test_items_go_only_into_a_collection_that_exists(
    node: Node, http: httpx.Client, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    item = items(1)[0]
    nope = {**item, "collection": "NOPE"}
    path = f"/stac/collections/NOPE/items/{item['id']}"
    calls = [
        lambda: http.post("/stac/collections/NOPE/items", json=nope, headers=node.publish),
        lambda: http.put(path, json=nope, headers=node.publish),
        lambda: http.patch(path, json={"properties": {"x": 1}}, headers=node.publish),
        lambda: http.delete(path, headers=node.publish),
    ]
    for call in calls:
        assert_problem(call(), 404, "NOPE")
    # Nothing was published: no node makes the collection.
    time.sleep(0.5)
    assert http.get("/stac/collections/NOPE").status_code == 404

    # Once it is created, the same items are accepted.
    r = http.post(
        "/stac/collections", json={**collection_for("CMIP6"), "id": "NOPE"}, headers=node.publish
    )
    assert r.status_code == 201, r.text
    _accepted(calls[0](), node, 1)
    _eventually(lambda: http.get(path).status_code == 200, "the item never appeared")


def test_writes_to_an_item_this_node_does_not_have_are_404(
    node: Node, http: httpx.Client, drs_node: Node
) -> None:
    for on in (node, drs_node):
        with httpx.Client(base_url=on.url, timeout=30) as client:
            for item_id in ("not-a-drs-id", "CMIP6.CMIP.X.Y.historical.r1i1p1f1.Amon.tas.gn.v1"):
                path = f"/stac/collections/CMIP6/items/{item_id}"
                assert_problem(client.delete(path, headers=on.publish), 404, item_id)
                r = client.patch(path, json={"properties": {"x": 1}}, headers=on.publish)
                assert_problem(r, 404, item_id)


def test_an_item_whose_id_is_not_drs_is_retracted_on_drs_topics(
    drs_node: Node, items: Callable[[int], list[dict[str, Any]]]
) -> None:
    # Its topic comes from its properties; its retraction, which carries only its id,
    # takes the same topic, found from the item as this node has it.
    item = {**items(1)[0], "id": f"my-dataset-{uuid.uuid4().hex[:8]}"}
    with httpx.Client(base_url=drs_node.url, timeout=30) as http:
        path = f"/stac/collections/CMIP6/items/{item['id']}"
        r = http.post("/stac/collections/CMIP6/items", json=item, headers=drs_node.publish)
        _accepted(r, drs_node, 1)
        _eventually(lambda: http.get(path).status_code == 200, "the created item never appeared")
        _accepted(http.delete(path, headers=drs_node.publish), drs_node, 1)
        _eventually(
            lambda: http.get(path).json()["properties"].get("retracted") is True,
            "the retraction was never applied",
        )
