"""GET /stac/publications/{request_id}: what became of a publication on every node."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from strato.app import create_app
from strato.auth import Scope
from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.settings import Settings
from tests.helpers import assert_problem

WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}


@pytest.fixture
def nodes(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {}
    for name in ("east", "west"):
        settings = Settings(data_dir=tmp_path / name, node_name=name)
        settings.data.demo = False
        settings.catalog.consume = False
        ctx = Context.open(settings)
        ctx.migrate()
        url = serve(create_app(settings, context=ctx))
        made[name] = {"settings": settings, "ctx": ctx, "url": url}
    made["east"]["settings"].catalog.peers = {"west": made["west"]["url"]}
    yield made
    for node in made.values():
        node["ctx"].close()


def _publish(node: dict[str, Any], items: list[dict[str, Any]], request_id: str) -> None:
    events = [create_event("CMIP6", it, requester=WHO, request_id=request_id) for it in items]
    apply_events(ItemStore(node["ctx"].sessions), events)


def test_publication_is_pending_until_every_node_applied_it(nodes: dict[str, Any]) -> None:
    items = list(generate_items(2, seed=5))
    url = nodes["east"]["url"] + "/stac/publications/req-1"

    body = httpx.get(url).json()
    assert body["status"] == "pending"
    assert [(n["node"], n["status"]) for n in body["nodes"]] == [
        ("east", "pending"),
        ("west", "pending"),
    ]

    _publish(nodes["west"], items, "req-1")
    body = httpx.get(url).json()
    assert body["status"] == "pending"
    west = body["nodes"][1]
    assert (west["status"], west["applied"], west["url"]) == (
        "applied",
        2,
        nodes["west"]["url"],
    )
    assert {e["item_id"] for e in west["events"]} == {it["id"] for it in items}

    _publish(nodes["east"], items, "req-1")
    assert httpx.get(url).json()["status"] == "applied"
    # local=true: this node's view only, as peers ask each other.
    local = httpx.get(url, params={"local": "true"}).json()
    assert [n["node"] for n in local["nodes"]] == ["east"]


def test_rejections_are_reported_with_their_reason(nodes: dict[str, Any]) -> None:
    item = next(generate_items(1, seed=6))
    _publish(nodes["east"], [item], "req-a")
    _publish(nodes["west"], [item], "req-a")
    # The same id again: refused as already existing, on both nodes.
    _publish(nodes["east"], [item], "req-b")
    _publish(nodes["west"], [item], "req-b")
    body = httpx.get(nodes["east"]["url"] + "/stac/publications/req-b").json()
    assert body["status"] == "rejected"
    event = body["nodes"][0]["events"][0]
    assert (event["outcome"], event["status"], event["title"]) == (
        "rejected",
        409,
        "item-already-exists",
    )
    assert item["id"] in event["detail"]


def test_an_unreachable_peer_is_said_so(nodes: dict[str, Any]) -> None:
    nodes["east"]["settings"].catalog.peers = {"gone": "http://127.0.0.1:9"}
    body = httpx.get(nodes["east"]["url"] + "/stac/publications/req-x").json()
    assert body["nodes"][1]["node"] == "gone"
    assert body["nodes"][1]["status"] == "unreachable"
    assert body["status"] == "pending"


def test_a_malformed_request_id_is_refused(nodes: dict[str, Any]) -> None:
    r = httpx.get(nodes["east"]["url"] + "/stac/publications/" + "x" * 65)
    assert_problem(r, 422, "request_id")


def test_a_private_peer_answers_when_given_this_nodes_token(
    tmp_path: Path, serve: Callable[[Any], str], nodes: dict[str, Any]
) -> None:
    settings = Settings(data_dir=tmp_path / "north", node_name="north")
    settings.data.demo = False
    settings.catalog.consume = False
    settings.auth.anonymous_read = False
    ctx = Context.open(settings)
    ctx.migrate()
    try:
        ctx.identities.create_user("east-node", password="a-long-password", scopes=[Scope.READ])
        token = ctx.identities.create_token("east-node", [Scope.READ]).secret
        north = {"settings": settings, "ctx": ctx, "url": serve(create_app(settings, context=ctx))}
        item = next(generate_items(1, seed=7))
        _publish(north, [item], "req-p")
        east = nodes["east"]["settings"].catalog
        east.peers = {"north": north["url"]}
        url = nodes["east"]["url"] + "/stac/publications/req-p"

        refused = httpx.get(url).json()["nodes"][1]
        assert refused["status"] == "unreachable"
        assert "401" in refused["detail"]
        assert "STRATO_CATALOG_PEER_TOKEN" in refused["detail"]

        east.peer_token = SecretStr(token)
        answered = httpx.get(url).json()["nodes"][1]
        got = (answered["node"], answered["status"], answered["applied"])
        assert got == ("north", "applied", 1)
    finally:
        ctx.close()


def test_a_node_whose_topics_exclude_the_items_is_not_subscribed(
    nodes: dict[str, Any],
) -> None:
    # As in the playground: topics by DRS, west consumes only the historical experiment.
    for node in nodes.values():
        node["settings"].catalog.topic_strategy = "drs"
    nodes["west"]["settings"].catalog.topics = r"[^.]+\.historical\.[^.]+"
    items = list(generate_items(40, seed=8))
    scenario = [it for it in items if it["properties"]["cmip6:experiment_id"] != "historical"]
    historical = [it for it in items if it["properties"]["cmip6:experiment_id"] == "historical"]
    assert scenario
    assert historical

    _publish(nodes["east"], scenario[:2], "req-s")
    body = httpx.get(nodes["east"]["url"] + "/stac/publications/req-s").json()
    assert [(n["node"], n["status"]) for n in body["nodes"]] == [
        ("east", "applied"),
        ("west", "not-subscribed"),
    ]
    # West will never apply them: the publication is complete.
    assert body["status"] == "applied"
    # Asked on west, which has seen nothing of it, the answer is the same.
    nodes["west"]["settings"].catalog.peers = {"east": nodes["east"]["url"]}
    body = httpx.get(nodes["west"]["url"] + "/stac/publications/req-s").json()
    assert [(n["node"], n["status"]) for n in body["nodes"]] == [
        ("west", "not-subscribed"),
        ("east", "applied"),
    ]
    assert body["status"] == "applied"

    # An item west does consume is pending there until it applies it.
    _publish(nodes["east"], [historical[0], scenario[2]], "req-h")
    body = httpx.get(nodes["east"]["url"] + "/stac/publications/req-h").json()
    assert [(n["node"], n["status"]) for n in body["nodes"]] == [
        ("east", "applied"),
        ("west", "pending"),
    ]
    assert body["status"] == "pending"
