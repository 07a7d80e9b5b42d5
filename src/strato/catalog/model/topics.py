"""Topics: where an event goes on the bus, by one topic or by DRS facets.

A node consumes the topics its filter names, so the route is what decides which nodes
see an item; the key keeps one item's events in order on a partitioned bus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from strato.bus.names import compile_pattern
from strato.catalog.model.events import SINGLE_TOPIC, Event
from strato.errors import InvalidInput


class Route(NamedTuple):
    """Where an event goes: its topic, and the key that keeps one item's events in order."""

    topic: str
    key: str


Strategy = Literal["single", "drs"]

_TOKEN = re.compile(r"^[A-Za-z0-9-]+$")
# Which properties name the experiment and the model, per project prefix.
_DRS_FACETS = {
    "cmip6": ("cmip6:experiment_id", "cmip6:source_id"),
    "cordex": ("cordex:driving_experiment_id", "cordex:source_id"),
}


def _facets_from_item(item: Mapping[str, Any]) -> tuple[str, str, str] | None:
    props = item.get("properties")
    if not isinstance(props, Mapping):
        return None
    for prefix, (experiment_key, source_key) in _DRS_FACETS.items():
        experiment, source = props.get(experiment_key), props.get(source_key)
        if isinstance(experiment, str) and isinstance(source, str):
            era = props.get("cmip6:mip_era") if prefix == "cmip6" else None
            era = era or props.get("project") or prefix.upper()
            return str(era), experiment, source
    return None


def _facets_from_id(item_id: str) -> tuple[str, str, str] | None:
    parts = item_id.split(".")
    if parts[0] == "CMIP6" and len(parts) == 10:
        return parts[0], parts[4], parts[3]
    if parts[0] == "CORDEX" and len(parts) == 12:
        return parts[0], parts[5], parts[7]
    return None


def _route(item_id: str, facets: tuple[str, str, str] | None, strategy: str) -> Route:
    if strategy == "single":
        return Route(SINGLE_TOPIC, item_id)
    if strategy != "drs":
        raise InvalidInput(f"unknown topic strategy {strategy!r}: 'single' or 'drs'")
    if facets is None:
        raise InvalidInput(f"item {item_id!r} has no mip_era, experiment and source to route by")
    bad = [f for f in facets if not _TOKEN.match(f)]
    if bad:
        raise InvalidInput(f"item {item_id!r}: {bad[0]!r} cannot be part of a topic name")
    return Route(".".join(facets), item_id)


def topic_for(item: Mapping[str, Any], strategy: Strategy = "single") -> Route:
    """``("esgf.events", id)`` or, for "drs", ``("<mip_era>.<experiment_id>.<source_id>", id)``."""
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise InvalidInput("an item to route needs an id")
    # The id comes first so that an item's patches, which carry only its id, take the
    # same route as its creation: one topic and one key keep its events in order.
    return _route(item_id, _facets_from_id(item_id) or _facets_from_item(item), strategy)


def topic_for_event(event: Event, strategy: Strategy = "single") -> Route:
    """The route of an event; a patch, which has no item, is routed by its item id's DRS."""
    item = event.item
    facets = _facets_from_id(event.item_id)
    if facets is None and item is not None:
        facets = _facets_from_item(item)
    return _route(event.item_id, facets, strategy)


# --- what a node consumes ------------------------------------------------------------------

_NAME_PART = r"[A-Za-z0-9_-]+"
DEFAULT_TOPICS = {
    "single": re.escape(SINGLE_TOPIC),
    "drs": rf"{_NAME_PART}\.{_NAME_PART}\.{_NAME_PART}",
}


def default_topics(strategy: str) -> str:
    """The pattern of every event topic of a topic strategy ("single" or "drs")."""
    try:
        return DEFAULT_TOPICS[strategy]
    except KeyError:
        raise InvalidInput(
            f"unknown topic strategy {strategy!r}: {' or '.join(DEFAULT_TOPICS)}"
        ) from None


def subscription_pattern(topics: str, error_topic: str) -> str:
    """``topics`` without the error topic: a node never consumes error reports as events."""
    if compile_pattern(topics).match(error_topic) is None:
        # Left as given, so a backend can hand it to its server (NATS subject filters).
        return topics
    return rf"(?!{re.escape(error_topic)}\Z)(?:{topics})"
