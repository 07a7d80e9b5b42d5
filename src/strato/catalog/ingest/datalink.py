"""Datasets served on this node (by the data capability) appear in its catalog, as events.

The link does not write the catalog: it compares the served datasets with the items
of the node's dataset collection and publishes what differs (create, update, or a
retraction for a dataset no longer served), so the node's consumer applies them like
any publisher's events, and every node on the stream sees them. Comparing instead of
hooking into registration catches datasets added by any process: the API, the
command line, the demo.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from strato.caching import LRU
from strato.catalog.model.events import Event, create_event, retraction_event, update_event
from strato.catalog.store import ItemRow, ItemStore
from strato.dataset_sources import DatasetSource
from strato.errors import StratoError

log = logging.getLogger(__name__)

REQUESTER = {"client_id": "strato-data", "iss": "strato", "sub": "data-service"}
# An event published and not applied yet is not published again before this many seconds.
PENDING_SECONDS = 60.0
# Datasets whose last published change is remembered (an update keeps the item's text, a
# few kilobytes); one forgotten early costs at most its change published again, which
# the applier takes as the same change.
PENDING_KEPT = 10_000


def collection_id(node_name: str) -> str:
    """The collection of a node's served datasets; per node, so nodes sharing a stream
    never write each other's items."""
    return "datasets." + re.sub(r"[^A-Za-z0-9_-]", "-", node_name)


def _comparable(item: Mapping[str, Any]) -> str:
    # What the applier adds or changes on its own is not a difference worth an event;
    # through JSON, so tuples and lists, as the database gives them back, compare equal.
    props = dict(item.get("properties") or {})
    props.pop("latest", None)
    props.pop("retracted", None)
    return json.dumps({**item, "properties": props}, sort_keys=True, default=str)


@dataclass
class DatasetLink:
    # Whatever serves this node's datasets, from the Context: the catalog knows no more.
    data: DatasetSource
    store: ItemStore
    node_name: str
    base_url: str
    # dataset id -> the change last published for it, forgotten after PENDING_SECONDS.
    _pending: LRU[str, str] = field(default_factory=lambda: LRU(PENDING_KEPT, ttl=PENDING_SECONDS))

    @property
    def collection(self) -> str:
        return collection_id(self.node_name)

    def _catalogued(self) -> dict[str, tuple[dict[str, Any], bool]]:
        with self.store.sessions() as s:
            rows = s.execute(
                select(ItemRow.id, ItemRow.content, ItemRow.retracted).where(
                    ItemRow.collection_id == self.collection
                )
            )
            return {row.id: (dict(row.content), bool(row.retracted)) for row in rows}

    def _wanted(self) -> dict[str, dict[str, Any]]:
        wanted: dict[str, dict[str, Any]] = {}
        for status in self.data.statuses():
            if status.state == "broken":
                continue
            try:
                item = self.data.stac_item(status.id, self.base_url)
                # An item that cannot travel as JSON would fail the whole batch when
                # published: find out here, for this dataset alone.
                json.dumps(item, allow_nan=False)
            except StratoError as exc:
                log.info("dataset %s not catalogued: %s", status.id, exc.detail)
                continue
            except Exception:
                # One dataset that cannot be described must not hold back the others.
                log.exception("dataset %s not catalogued: describing it failed", status.id)
                continue
            # ESGF items say both, and retraction patches replace them, which needs them there.
            props = {**item["properties"], "latest": True, "retracted": False}
            wanted[status.id] = {**item, "collection": self.collection, "properties": props}
        return wanted

    def _fresh(self, dataset_id: str, what: str) -> bool:
        """Whether this change was not published a moment ago (and so is to be published)."""
        if self._pending.get(dataset_id) == what:
            return False
        self._pending.put(dataset_id, what)
        return True

    def changes(self) -> list[Event]:
        """The events that bring the catalog in line with the served datasets."""
        catalogued = self._catalogued()
        wanted = self._wanted()
        events: list[Event] = []
        for dataset_id, item in sorted(wanted.items()):
            current = catalogued.get(dataset_id)
            if current is None:
                if self._fresh(dataset_id, "create"):
                    events.append(create_event(self.collection, item, requester=REQUESTER))
                continue
            text = _comparable(item)
            if (current[1] or _comparable(current[0]) != text) and self._fresh(dataset_id, text):
                events.append(update_event(self.collection, item, requester=REQUESTER))
        for dataset_id, (_, retracted) in sorted(catalogued.items()):
            if dataset_id not in wanted and not retracted and self._fresh(dataset_id, "retract"):
                events.append(retraction_event(self.collection, dataset_id, requester=REQUESTER))
        return events


def summarise(events: Sequence[Event]) -> str:
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
