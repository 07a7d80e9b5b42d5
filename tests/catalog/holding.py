"""A migrated catalog node that already holds given items, for tests that read them back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strato.catalog.demo.generated_collections import collection_for
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event
from strato.catalog.store import ItemStore
from strato.context import Context
from strato.settings import Settings

WHO = {"client_id": "test", "iss": "https://auth.example", "sub": "tester"}


def catalog_holding(settings: Settings, items: Iterable[dict[str, Any]]) -> Context:
    """The node of ``settings``, migrated, with ``items`` (and their collections) applied
    through the event path a publisher's events take; the caller closes it."""
    items = list(items)
    ctx = Context.open(settings)
    ctx.migrate()
    store = ItemStore(ctx.sessions)
    for collection in dict.fromkeys(it["collection"] for it in items):
        store.upsert_collection(collection_for(collection))
    outcomes = apply_events(
        store, [create_event(it["collection"], it, requester=WHO) for it in items]
    )
    # Every test built on this counts on each item being there.
    assert {o.status for o in outcomes} <= {"applied"}, [o.status for o in outcomes]
    return ctx
