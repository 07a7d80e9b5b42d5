"""What the node's consumer did lately: applied and rejected events, newest first.

Read from ``catalog_applied_events``, where the applier remembers every event's outcome
(for idempotence); the live view of the web pages polls this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from strato.catalog.store import AppliedEventRow, RecordedOutcome, recorded
from strato.errors import InvalidInput

MAX_ACTIVITY = 500


@dataclass(frozen=True)
class Activity:
    entries: list[RecordedOutcome]
    applied: int
    rejected: int


def recent_activity(
    sessions: sessionmaker[Session], *, limit: int = 50, errors_only: bool = False
) -> Activity:
    """The ``limit`` newest outcomes (only rejections with ``errors_only``), and totals."""
    if not 1 <= limit <= MAX_ACTIVITY:
        raise InvalidInput(f"limit must be within 1..{MAX_ACTIVITY}, not {limit}")
    query = select(AppliedEventRow)
    if errors_only:
        query = query.where(AppliedEventRow.outcome != "applied")
    # Events of one batch may share a timestamp: the id keeps the order stable.
    query = query.order_by(AppliedEventRow.applied_at.desc(), AppliedEventRow.event_id.desc())
    totals = select(AppliedEventRow.outcome, func.count()).group_by(AppliedEventRow.outcome)
    with sessions() as s:
        rows = s.scalars(query.limit(limit)).all()
        counts = {str(outcome): int(n) for outcome, n in s.execute(totals)}
        entries = [recorded(r) for r in rows]
    applied = counts.pop("applied", 0)
    return Activity(entries=entries, applied=applied, rejected=sum(counts.values()))


def entry_json(entry: RecordedOutcome) -> dict[str, Any]:
    applied = entry.outcome == "applied"
    return {
        "event_id": entry.event_id,
        "request_id": entry.request_id,
        "outcome": "applied" if applied else "rejected",
        "status": entry.status,
        "title": entry.title,
        "detail": entry.detail,
        "collection_id": entry.collection_id,
        "item_id": entry.item_id,
        "time": entry.applied_at.isoformat().replace("+00:00", "Z"),
        # An item page exists only for what was applied.
        "item_url": item_path(entry.collection_id, entry.item_id) if applied else None,
    }


def item_path(collection_id: str, item_id: str) -> str:
    """The item's page on this node, its ids quoted as path segments."""
    return f"/catalog/collections/{quote(collection_id, safe='')}/items/{quote(item_id, safe='')}"


def activity_json(activity: Activity) -> dict[str, Any]:
    return {
        "applied": activity.applied,
        "rejected": activity.rejected,
        "events": [entry_json(e) for e in activity.entries],
    }
