"""Collection search: the collections of a node matching free text, a bbox and a time.

A node has a handful of collections, so they are read whole and matched in Python:
``q`` as for items (whole words of the id, title, description and keywords; terms
OR'ed), ``bbox`` and ``datetime`` against the collection's extent, either crossing the
antimeridian. Sorted by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from strato.catalog.model.geometry import Envelope, GeometryError, check_bbox, envelopes_meet
from strato.catalog.search.extents import checked_bbox
from strato.catalog.store import CollectionRow, parse_datetime, searchable_texts, words
from strato.errors import InvalidInput


def search_collections(
    session: Session,
    *,
    q: Sequence[str] = (),
    bbox: tuple[float, float, float, float] | None = None,
    interval: tuple[datetime | None, datetime | None] | None = None,
    limit: int,
    offset: int,
    max_limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """Collections matching, ``offset`` and ``limit`` applied, and how many match in all."""
    if isinstance(limit, bool) or not 1 <= limit <= max_limit:
        raise InvalidInput(f"limit must be between 1 and {max_limit}, not {limit!r}")
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, not {offset!r}")
    envelope = None if bbox is None else checked_bbox(bbox)
    wanted = [set(words(term)) for term in q]
    for term, found in zip(q, wanted, strict=True):
        if not found:
            raise InvalidInput(f"q: {term!r} has no word to search for")
    if interval is not None and interval[0] and interval[1] and interval[0] > interval[1]:
        raise InvalidInput("datetime: the start of the interval is after its end")
    contents = [
        dict(c) for c in session.scalars(select(CollectionRow.content).order_by(CollectionRow.id))
    ]
    hits = [
        c
        for c in contents
        if (not wanted or _any_term(c, wanted))
        and (envelope is None or _extent_hits_bbox(c, envelope))
        and (interval is None or _extent_hits_time(c, interval))
    ]
    return hits[offset : offset + limit], len(hits)


def _collection_words(content: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for text in searchable_texts(content.get("id"), content):
        found.update(words(text))
    return found


def _any_term(content: Mapping[str, Any], terms: list[set[str]]) -> bool:
    have = _collection_words(content)
    return any(term <= have for term in terms)


def _extent(content: Mapping[str, Any], kind: str, key: str) -> list[Any]:
    extent = content.get("extent")
    part = extent.get(kind) if isinstance(extent, Mapping) else None
    found = part.get(key) if isinstance(part, Mapping) else None
    return found if isinstance(found, list) else []


def _extent_hits_bbox(content: Mapping[str, Any], envelope: Envelope) -> bool:
    for box in _extent(content, "spatial", "bbox"):
        try:
            theirs = check_bbox(box if isinstance(box, list) else [])
        except GeometryError:
            continue  # a collection's bad extent is its publisher's; it just matches nothing
        if envelopes_meet(theirs, envelope):
            return True
    return False


def _extent_hits_time(
    content: Mapping[str, Any], interval: tuple[datetime | None, datetime | None]
) -> bool:
    start, end = interval
    for pair in _extent(content, "temporal", "interval"):
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        theirs = [None if v is None else parse_datetime(v) for v in pair]
        lo = theirs[0] or datetime.min.replace(tzinfo=UTC)
        hi = theirs[1] or datetime.max.replace(tzinfo=UTC)
        if (end is None or lo <= end) and (start is None or hi >= start):
            return True
    return False
