"""The index node's STAC item store: collections, items, their facets and applied events.

An item is kept whole as JSON (what the STAC API returns), with the properties that
searches filter and sort on copied into columns, and one ``catalog_facets`` row per
facet value, so term filters and aggregations use an index instead of scanning JSON,
which each of SQLite, PostgreSQL and MariaDB queries differently.

The same table is the free-text index. The words of facet values are kept once per
distinct value, in ``catalog_value_words``: a word finds the items that have a facet
value containing it through their facet rows. The other words of an item's id, title,
description and keywords are rows under the reserved name :data:`WORDS` (no facet can
have it: facet names start with a project prefix). For ESGF items nearly every word is
a facet value's, so an item has about half the index rows it would have with a row per
word. Written by the same code path as the facets, the words can never disagree with
the item they index.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from strato.caching import LRU
from strato.catalog.model import rfc3339
from strato.catalog.model.geometry import GeometryError, check_bbox
from strato.db import Base, UTCDateTime, utcnow
from strato.errors import InvalidInput, NotFound

# Column sizes, shared with the applier so it can refuse what would not fit.
COLLECTION_ID_LEN = 128
ITEM_ID_LEN = 255
EVENT_ID_LEN = 64
FACET_NAME_LEN = 64
FACET_VALUE_LEN = 255
VERSION_LEN = 32

FACET_PREFIXES = ("cmip6:", "cordex:")
FACET_PLAIN = ("project",)
# The facet name of free-text words; not a valid property name, so never a facet's.
WORDS = "~words"
# Bounds the rows one item with a long description adds to the index.
MAX_WORDS = 500
_WORD = re.compile(r"[^\W_]+")
# Words that would match nearly every item: not indexed, and not searched for.
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it"}
    | {"of", "on", "or", "the", "to", "with"}
)


class CollectionRow(Base):
    __tablename__ = "catalog_collections"

    id: Mapped[str] = mapped_column(String(COLLECTION_ID_LEN), primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ItemRow(Base):
    __tablename__ = "catalog_items"
    __table_args__ = (
        UniqueConstraint("collection_id", "id", name="uq_catalog_items_collection_id"),
        # Default order (newest first), with and without a collection filter.
        Index("ix_catalog_items_time_start", "time_start", "pk"),
        Index("ix_catalog_items_collection_id_time_start", "collection_id", "time_start", "pk"),
        Index("ix_catalog_items_base_id", "base_id"),
        Index("ix_catalog_items_latest", "latest"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(COLLECTION_ID_LEN))
    id: Mapped[str] = mapped_column(String(ITEM_ID_LEN))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Named as the STAC property; annotations say dt.datetime since this shadows the class.
    datetime: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    start_datetime: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_datetime: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The item's time extent whether it has one instant or a range, as pgstac keeps it:
    # what searches mean by "datetime" when they filter and sort.
    time_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    time_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Double, not Float: MariaDB's FLOAT is single precision.
    west: Mapped[float | None] = mapped_column(Double, nullable=True)
    south: Mapped[float | None] = mapped_column(Double, nullable=True)
    east: Mapped[float | None] = mapped_column(Double, nullable=True)
    north: Mapped[float | None] = mapped_column(Double, nullable=True)
    base_id: Mapped[str | None] = mapped_column(String(ITEM_ID_LEN), nullable=True)
    version: Mapped[str | None] = mapped_column(String(VERSION_LEN), nullable=True)
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FacetRow(Base):
    __tablename__ = "catalog_facets"
    __table_args__ = (
        # Term filters and aggregations over everything: the items of a value.
        Index("ix_catalog_facets_name_value", "name", "value", "item_pk"),
        # Probes and aggregations over a few items: the values of an item; also what
        # the foreign key and the applier's deletes by item_pk need.
        Index("ix_catalog_facets_item_pk_name", "item_pk", "name", "value"),
    )

    # A surrogate key: the same (item, name, value) may legitimately repeat in a list.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_pk: Mapped[int] = mapped_column(ForeignKey("catalog_items.pk", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(FACET_NAME_LEN))
    value: Mapped[str] = mapped_column(String(FACET_VALUE_LEN))


class ValueWordRow(Base):
    """A word of a facet value: free text finds the items with that value by it."""

    __tablename__ = "catalog_value_words"

    word: Mapped[str] = mapped_column(String(FACET_VALUE_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(FACET_NAME_LEN), primary_key=True)
    value: Mapped[str] = mapped_column(String(FACET_VALUE_LEN), primary_key=True)


class AppliedEventRow(Base):
    __tablename__ = "catalog_applied_events"
    __table_args__ = (Index("ix_catalog_applied_events_request_id", "request_id"),)

    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LEN), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(EVENT_ID_LEN))
    collection_id: Mapped[str] = mapped_column(String(COLLECTION_ID_LEN))
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_LEN))
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    # Kept so a re-delivered event can be answered with the original outcome, word for word.
    title: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class RecordedOutcome:
    """What happened to one event, as remembered."""

    event_id: str
    request_id: str
    collection_id: str
    item_id: str
    outcome: str
    status: int
    title: str
    detail: str
    applied_at: datetime


def recorded(row: AppliedEventRow) -> RecordedOutcome:
    return RecordedOutcome(
        event_id=row.event_id,
        request_id=row.request_id,
        collection_id=row.collection_id,
        item_id=row.item_id,
        outcome=row.outcome,
        status=row.status,
        title=row.title,
        detail=row.detail,
        applied_at=row.applied_at,
    )


# --- derived columns ----------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """An RFC 3339 string as an aware UTC datetime; None for anything else."""
    return rfc3339.parse_utc(value) if isinstance(value, str) else None


def _bbox(value: Any) -> tuple[float | None, float | None, float | None, float | None]:
    # Events are checked with the same rule before they get here; a bbox that is not
    # valid all the same (a row written before) leaves the item out of spatial searches.
    try:
        return check_bbox(value) if isinstance(value, list) else (None, None, None, None)
    except GeometryError:
        return None, None, None, None


def _short_str(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and len(value) <= limit else None


def derive(row: ItemRow, content: dict[str, Any]) -> None:
    """Set ``row``'s content and every column copied from it."""
    props = content.get("properties")
    props = props if isinstance(props, dict) else {}
    row.content = content
    row.datetime = parse_datetime(props.get("datetime"))
    row.start_datetime = parse_datetime(props.get("start_datetime"))
    row.end_datetime = parse_datetime(props.get("end_datetime"))
    row.time_start = row.datetime or row.start_datetime or row.end_datetime
    row.time_end = row.datetime or row.end_datetime or row.start_datetime
    row.west, row.south, row.east, row.north = _bbox(content.get("bbox"))
    row.base_id = _short_str(props.get("base_id"), ITEM_ID_LEN)
    row.version = _short_str(props.get("version"), VERSION_LEN)
    # An item that does not say otherwise is the latest and not retracted, as in ESGF.
    row.latest = props.get("latest") is not False
    row.retracted = props.get("retracted") is True
    row.updated_at = utcnow()


def _facet_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Too long for the column: better absent from term filters than truncated and wrong.
        return value if len(value) <= FACET_VALUE_LEN else None
    if isinstance(value, int | float):
        return str(value)
    return None


def is_facet(name: str) -> bool:
    """Whether property ``name`` is kept as facet rows."""
    # Checked before the cache, so names of any length sent in items are never kept.
    return len(name) <= FACET_NAME_LEN and _facet_name(name)


@functools.lru_cache(maxsize=4096)
def _facet_name(name: str) -> bool:
    # The same few names on every item of a project: looked up, not matched again.
    return name in FACET_PLAIN or name.startswith(FACET_PREFIXES)


def _searchable(word: str) -> bool:
    # Single letters, short numbers (units, "01.00.32") and stopwords find everything.
    if len(word) < 2 or len(word) > FACET_VALUE_LEN or word in STOPWORDS:
        return False
    return not (word.isdigit() and len(word) < 4)


def words(text: str) -> list[str]:
    """The words free-text search sees in ``text``: runs of letters and digits, lower case.

    URLs have none: their parts repeat the item's id and would bloat the index.
    """
    if text.startswith(("http://", "https://")):
        return []
    return [w for w in _WORD.findall(text.lower()) if _searchable(w)]


@functools.lru_cache(maxsize=8192)
def value_words(value: str) -> tuple[str, ...]:
    """The words of a facet value (kept in ``catalog_value_words``)."""
    # Facet values repeat from item to item (experiments, models, variables), unlike ids.
    return tuple(words(value))


def _facets_only(content: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    props = content.get("properties")
    if not isinstance(props, Mapping):
        return
    for name, value in props.items():
        if not is_facet(name):
            continue
        if type(value) is str:  # the common case, without the general checks
            if len(value) <= FACET_VALUE_LEN:
                yield name, value
            continue
        for element in value if isinstance(value, list) else [value]:
            text = _facet_text(element)
            if text is not None:
                yield name, text


def searchable_texts(doc_id: Any, fields: Mapping[str, Any]) -> Iterator[str]:
    """What free text searches in a document: its id, then the title, description and
    keywords of ``fields`` (an item's properties, a collection itself)."""
    keywords = fields.get("keywords")
    for value in (
        doc_id,
        fields.get("title"),
        fields.get("description"),
        *(keywords if isinstance(keywords, list) else []),
    ):
        if isinstance(value, str):
            yield value


def _text_words(content: Mapping[str, Any]) -> set[str]:
    props = content.get("properties")
    found: set[str] = set()
    for text in searchable_texts(content.get("id"), props if isinstance(props, Mapping) else {}):
        found.update(words(text))
    return found


def facet_values(content: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The ``catalog_facets`` rows of an item, as ``(name, value)``.

    One per scalar of each facet property (one per list element), then one under the
    name :data:`WORDS` per distinct word of its id, title, description and keywords
    that none of its facet values has (those are found through ``catalog_value_words``).
    """
    covered: set[str] = set()
    for name, value in _facets_only(content):
        covered.update(value_words(value))
        yield name, value
    for word in sorted(_text_words(content) - covered)[:MAX_WORDS]:
        yield WORDS, word


def item_words(content: Mapping[str, Any]) -> set[str]:
    """Every word free text finds ``content`` by: its text's and its facet values'."""
    found = _text_words(content)
    for _, value in _facets_only(content):
        found.update(value_words(value))
    return found


def minimal_collection(collection_id: str) -> dict[str, Any]:
    """A valid STAC Collection for an id first seen in an event; its extent is unknown."""
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "description": f"Items published to {collection_id}",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }


# --- the store ----------------------------------------------------------------------------


# Bounds the memory of which facet values have their words stored: forgetting costs
# only an insert that finds them there.
_WORDED_MAX = 100_000


class ItemStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        # Facet values whose words are in catalog_value_words: committed there. A set
        # kept as an LRU (the value is only "yes"), so the values in use stay known.
        self.worded: LRU[tuple[str, str], bool] = LRU(_WORDED_MAX)

    def note_worded(self, values: Iterable[tuple[str, str]]) -> None:
        for value in values:
            self.worded.put(value, True)

    def get_item(self, collection_id: str, item_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            content = s.scalar(
                select(ItemRow.content).where(
                    ItemRow.collection_id == collection_id, ItemRow.id == item_id
                )
            )
        if content is None:
            raise NotFound(f"no item {item_id!r} in collection {collection_id!r}")
        return dict(content)

    def count(self, collection_id: str | None = None) -> int:
        query = select(func.count()).select_from(ItemRow)
        if collection_id is not None:
            query = query.where(ItemRow.collection_id == collection_id)
        with self.sessions() as s:
            return int(s.scalar(query) or 0)

    def get_collection(self, collection_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = s.get(CollectionRow, collection_id)
            if row is None:
                raise NotFound(f"no collection {collection_id!r}")
            return dict(row.content)

    def upsert_collection(self, collection: Mapping[str, Any]) -> None:
        collection_id = collection.get("id")
        if not isinstance(collection_id, str) or not 0 < len(collection_id) <= COLLECTION_ID_LEN:
            raise InvalidInput(f"a collection needs an id of 1-{COLLECTION_ID_LEN} characters")
        with self.sessions.begin() as s:
            row = s.get(CollectionRow, collection_id)
            if row is None:
                s.add(CollectionRow(id=collection_id, content=dict(collection)))
            else:
                row.content = dict(collection)
                row.updated_at = utcnow()

    def facets(self, collection_id: str, item_id: str) -> list[tuple[str, str]]:
        """The facet rows of one item, sorted: what term filters will see."""
        with self.sessions() as s:
            rows = s.execute(
                select(FacetRow.name, FacetRow.value)
                .join(ItemRow, ItemRow.pk == FacetRow.item_pk)
                .where(
                    ItemRow.collection_id == collection_id,
                    ItemRow.id == item_id,
                    FacetRow.name != WORDS,
                )
            )
            return sorted((name, value) for name, value in rows)

    def item_flags(self, collection_id: str, item_id: str) -> tuple[bool, bool]:
        """``(latest, retracted)`` as the columns have them."""
        with self.sessions() as s:
            row = s.execute(
                select(ItemRow.latest, ItemRow.retracted).where(
                    ItemRow.collection_id == collection_id, ItemRow.id == item_id
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"no item {item_id!r} in collection {collection_id!r}")
        return bool(row[0]), bool(row[1])

    def outcome(self, event_id: str) -> RecordedOutcome | None:
        with self.sessions() as s:
            row = s.get(AppliedEventRow, event_id)
            return None if row is None else recorded(row)

    def outcomes_for_request(self, request_id: str) -> list[RecordedOutcome]:
        with self.sessions() as s:
            rows = s.scalars(
                select(AppliedEventRow)
                .where(AppliedEventRow.request_id == request_id)
                .order_by(AppliedEventRow.applied_at, AppliedEventRow.event_id)
            )
            return [recorded(r) for r in rows]
