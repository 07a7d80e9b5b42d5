"""What became of a publication request on this node and on its peers.

A transaction answers 202 with a request id at once; the events are applied later by
each node's consumer. ``GET /stac/publications/{request_id}`` asks this node's record
of applied events and, unless ``local=true``, each configured peer's, so a publisher
learns in one call where its items are, which were refused and why.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Path, Query

from strato.auth import Scope
from strato.bus.names import compile_pattern
from strato.catalog.model.topics import DEFAULT_TOPICS, topic_for
from strato.catalog.settings import CatalogSettings
from strato.catalog.store import EVENT_ID_LEN, ItemStore, RecordedOutcome
from strato.errors import InvalidInput
from strato.http.security import Authenticator
from strato.redact import mask_secrets, mask_url
from strato.settings import Settings

NodeStatus = Literal["pending", "applied", "rejected", "partial", "unreachable", "not-subscribed"]
# States that say nothing about the outcome: the node cannot be asked, or will never see
# the events (its topics exclude them).
_SILENT = ("unreachable", "not-subscribed")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]+$")
_PEER_TIMEOUT = 3.0


def _event(o: RecordedOutcome) -> dict[str, Any]:
    return {
        "event_id": o.event_id,
        "collection_id": o.collection_id,
        "item_id": o.item_id,
        "outcome": "applied" if o.outcome == "applied" else "rejected",
        "status": o.status,
        "title": o.title,
        "detail": o.detail,
        "applied_at": o.applied_at.isoformat().replace("+00:00", "Z"),
    }


def node_report(name: str, url: str, outcomes: Sequence[RecordedOutcome]) -> dict[str, Any]:
    """One node's view: pending (nothing seen yet), applied, rejected, or partial."""
    rejected = sum(1 for o in outcomes if o.outcome != "applied")
    status: NodeStatus
    if not outcomes:
        status = "pending"
    elif rejected == 0:
        status = "applied"
    elif rejected == len(outcomes):
        status = "rejected"
    else:
        status = "partial"
    return {
        "node": name,
        "url": url,
        "status": status,
        "applied": len(outcomes) - rejected,
        "rejected": rejected,
        "events": [_event(o) for o in outcomes],
    }


def subscription(settings: Settings) -> dict[str, str]:
    """What this node's consumer reads: its topic strategy and the pattern of its topics."""
    catalog = CatalogSettings.of(settings)
    topics = catalog.topics or DEFAULT_TOPICS.get(catalog.topic_strategy, ".*")
    return {"strategy": catalog.topic_strategy, "topics": topics}


def _never_applies(report: Mapping[str, Any], items: set[str]) -> bool:
    """Whether a node that has seen nothing of a request never will: the topic of each of
    its items (known from the nodes that applied them) is outside the node's topics."""
    given = report.get("subscription")
    if not items or not isinstance(given, Mapping):
        return False
    try:
        pattern = compile_pattern(str(given.get("topics")))
        strategy = given.get("strategy")
        if strategy not in ("single", "drs"):
            return False
        # Routed by id, as patches are: the id's DRS, the topic its creation went to.
        topics = {topic_for({"id": item_id}, strategy).topic for item_id in items}
    except InvalidInput:
        return False  # an id without DRS: its topic cannot be known from here
    return not any(pattern.match(topic) for topic in topics)


def settle(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes that have seen nothing and whose topics exclude every item of the request
    reported as not-subscribed, so the request does not stay pending for them."""
    items = {e["item_id"] for n in nodes for e in n.get("events") or [] if "item_id" in e}
    return [
        {**n, "status": "not-subscribed"}
        if n.get("status") == "pending" and _never_applies(n, items)
        else n
        for n in nodes
    ]


def overall(nodes: Sequence[dict[str, Any]]) -> NodeStatus:
    """Pending while any reachable node that consumes the events has not seen them; then
    what the nodes made of them."""
    states = {n["status"] for n in nodes if n["status"] not in _SILENT}
    if not states:
        subscribed = all(n["status"] != "not-subscribed" for n in nodes)
        return "unreachable" if subscribed else "not-subscribed"
    if "pending" in states:
        return "pending"
    if len(states) == 1:
        return next(iter(states))
    return "partial"


async def _ask_peer(
    client: httpx.AsyncClient, name: str, url: str, request_id: str
) -> dict[str, Any]:
    target = f"{url.rstrip('/')}/stac/publications/{request_id}"
    url = mask_url(url)  # a peer URL may carry credentials; answers show it masked
    try:
        response = await client.get(target, params={"local": "true"})
        if response.status_code in (401, 403):
            # Said plainly: the fix is on this node (catalog.peer_token), not the peer.
            return {
                "node": name,
                "url": url,
                "status": "unreachable",
                "detail": f"the peer answered {response.status_code}: it is private; give "
                "this node a token with the read scope there (STRATO_CATALOG_PEER_TOKEN)",
            }
        response.raise_for_status()
        nodes = response.json().get("nodes") or []
        report = dict(nodes[0])
        report["node"], report["url"] = name, url
        return report
    except (httpx.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
        detail = mask_secrets(str(exc))[:300]
        return {"node": name, "url": url, "status": "unreachable", "detail": detail}


def make_publications_router(
    store: ItemStore, settings: Settings, auth: Authenticator
) -> APIRouter:
    router = APIRouter(
        prefix="/stac", tags=["STAC"], dependencies=[Depends(auth.require(Scope.READ))]
    )

    @router.get("/publications/{request_id}", summary="Outcome of a publication on each node")
    async def publication(
        request_id: Annotated[
            str,
            Path(
                min_length=1,
                max_length=EVENT_ID_LEN,
                pattern=_REQUEST_ID.pattern,
                description="The request id a transaction answered with.",
            ),
        ],
        local: Annotated[
            bool, Query(description="Only this node's view; do not ask the peers.")
        ] = False,
    ) -> dict[str, Any]:
        outcomes = await asyncio.to_thread(store.outcomes_for_request, request_id)
        own = node_report(settings.node_name, settings.base_url, outcomes)
        nodes = [{**own, "subscription": subscription(settings)}]
        peers = {} if local else CatalogSettings.of(settings).peers
        if peers:
            token = CatalogSettings.of(settings).peer_token
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
            async with httpx.AsyncClient(timeout=_PEER_TIMEOUT, headers=headers) as client:
                nodes += await asyncio.gather(
                    *(_ask_peer(client, name, url, request_id) for name, url in peers.items())
                )
        nodes = settle(nodes)
        return {"request_id": request_id, "status": overall(nodes), "nodes": nodes}

    return router
