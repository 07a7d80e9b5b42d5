"""Apply ESGF events to the item store, idempotently and in batches.

The consumer hands over a batch and commits its bus offsets once this returns, so a
batch is one transaction: each event is written under its own savepoint (a rejected or
failing event leaves the others alone) and everything is committed at the end. Delivery
is at-least-once, so every event's outcome is remembered by its ``event_id`` and a
re-delivered event changes nothing.

What the batch touches is read up front with a few ``IN`` queries (known events, existing
items, the current latest versions of the batch's datasets, collections), so the cost per
event is the writes, not a round of lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from strato.catalog.model.events import Event
from strato.catalog.model.item_limits import TITLE as ITEM_TOO_LARGE
from strato.catalog.model.item_limits import json_size, too_large
from strato.catalog.model.json_patch import apply_patch
from strato.catalog.store import (
    COLLECTION_ID_LEN,
    EVENT_ID_LEN,
    ITEM_ID_LEN,
    WORDS,
    AppliedEventRow,
    CollectionRow,
    FacetRow,
    ItemRow,
    ItemStore,
    ValueWordRow,
    derive,
    facet_values,
    minimal_collection,
    value_words,
)
from strato.db import Base, begin_write, dialect_of, utcnow
from strato.errors import InvalidInput

Status = Literal["applied", "duplicate", "rejected"]

# IN lists are cut to this size: far below every engine's limit on bound parameters.
_CHUNK = 500
_FACET_COLUMNS = ["item_pk", "name", "value"]
_K = TypeVar("_K", str, int)


@dataclass(frozen=True)
class Outcome:
    """What became of one event. A duplicate carries the first delivery's status and text."""

    event_id: str
    request_id: str
    status: Status
    http_status: int
    title: str
    detail: str


class _Rejected(Exception):
    def __init__(self, http_status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.title = title
        self.detail = detail


def _chunks(values: Iterable[_K]) -> Iterator[list[_K]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _newer(a: str | None, b: str | None) -> bool:
    """Whether version ``a`` is newer than ``b``; ESGF versions are dates or plain numbers."""
    if a is None or b is None:
        return False
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a > b


def _with_latest(content: dict[str, Any], latest: bool) -> dict[str, Any]:
    # A new dict: JSON columns only notice a change when the value is replaced.
    changed = dict(content)
    props = changed.get("properties")
    changed["properties"] = {**(props if isinstance(props, dict) else {}), "latest": latest}
    return changed


def _too_long(event: Event) -> str:
    meta = event.metadata
    if len(meta.event_id) > EVENT_ID_LEN or len(meta.request_id) > EVENT_ID_LEN:
        return f"event_id and request_id have at most {EVENT_ID_LEN} characters"
    if len(event.collection_id) > COLLECTION_ID_LEN:
        return f"collection_id has at most {COLLECTION_ID_LEN} characters"
    if len(event.item_id) > ITEM_ID_LEN:
        return f"the item id has at most {ITEM_ID_LEN} characters"
    return ""


class _Batch:
    def __init__(
        self,
        session: Session,
        events: Sequence[Event],
        worded: Container[tuple[str, str]],
        *,
        isolated: bool,
        max_item_bytes: int | None = None,
    ) -> None:
        self.s = session
        self.isolated = isolated
        self.max_item_bytes = max_item_bytes
        # Facet values whose words are known to be in catalog_value_words, and those
        # this batch added (known to the store once the batch is committed).
        self.worded = worded
        self.newly_worded: set[tuple[str, str]] = set()
        self.known: dict[str, Outcome] = {}
        self.items: dict[tuple[str, str], ItemRow] = {}
        self.latest: dict[str, list[ItemRow]] = {}
        self.collections: set[str] = set()
        # Rows written by this batch, by identity: their pks exist only after the flush.
        self.written: dict[int, ItemRow] = {}
        # Items that had facet rows before this batch and were rewritten since.
        self.stale: set[int] = set()
        # Items this batch creates: kept out of the session and inserted in one go at
        # the end, in their final state (the ORM would insert them one statement each).
        self.created: list[ItemRow] = []
        self.recorded: list[dict[str, Any]] = []
        self._preload(events)

    def _preload(self, events: Sequence[Event]) -> None:
        s = self.s
        for ids in _chunks(e.metadata.event_id for e in events):
            known = select(AppliedEventRow).where(AppliedEventRow.event_id.in_(ids))
            for row in s.scalars(known):
                status: Status = "applied" if row.outcome == "applied" else "rejected"
                self.known[row.event_id] = Outcome(
                    row.event_id, row.request_id, status, row.status, row.title, row.detail
                )
        # By collection and id, the unique key's order: ids alone have no index, and
        # would read the whole table once a batch.
        wanted: dict[str, set[str]] = {}
        for e in events:
            wanted.setdefault(e.collection_id, set()).add(e.item_id)
        for cid, item_ids in wanted.items():
            for ids in _chunks(item_ids):
                mine = select(ItemRow).where(ItemRow.collection_id == cid, ItemRow.id.in_(ids))
                for item in s.scalars(mine):
                    self.items[(cid, item.id)] = item
        base_ids: set[str] = set()
        for e in events:
            props = (e.item or {}).get("properties")
            if isinstance(props, dict) and isinstance(props.get("base_id"), str):
                base_ids.add(props["base_id"])
        for ids in _chunks(base_ids):
            # ``latest`` is checked here, not in SQL: a planner without statistics takes
            # its index, which nearly every row is in, over the dataset's.
            versions = select(ItemRow).where(ItemRow.base_id.in_(ids))
            for item in s.scalars(versions):
                if item.latest and item.base_id is not None:
                    self.latest.setdefault(item.base_id, []).append(item)
        for ids in _chunks(e.collection_id for e in events):
            self.collections.update(
                s.scalars(select(CollectionRow.id).where(CollectionRow.id.in_(ids)))
            )

    # --- one event ---

    def apply(self, event: Event) -> Outcome:
        meta = event.metadata
        known = self.known.get(meta.event_id)
        if known is not None:
            return Outcome(
                meta.event_id,
                known.request_id,
                "duplicate",
                known.http_status,
                known.title,
                known.detail,
            )
        too_long = _too_long(event)
        if too_long:
            # Not remembered: the ids do not fit the table, and the verdict cannot change.
            return Outcome(
                meta.event_id, meta.request_id, "rejected", 400, "invalid-event", too_long
            )
        try:
            if self.isolated:
                with self.s.begin_nested():
                    status, title, detail, after = self._write(event)
                    self.s.flush()
            else:
                # _write raises before it touches the session, so a rejection needs no
                # savepoint; database errors surface at the final flush.
                status, title, detail, after = self._write(event)
        except _Rejected as rejected:
            outcome = Outcome(
                meta.event_id,
                meta.request_id,
                "rejected",
                rejected.http_status,
                rejected.title,
                rejected.detail,
            )
        except IntegrityError as exc:
            # Someone else wrote the same item between our preload and this write.
            outcome = Outcome(
                meta.event_id, meta.request_id, "rejected", 409, "conflict", str(exc.orig)[:500]
            )
        else:
            after()
            outcome = Outcome(meta.event_id, meta.request_id, "applied", status, title, detail)
        self._remember(event, outcome)
        return outcome

    def _remember(self, event: Event, outcome: Outcome) -> None:
        # Inserted in bulk at the end of the batch; the in-memory copy answers a second
        # delivery within this same batch.
        self.known[outcome.event_id] = outcome
        self.recorded.append(
            {
                "event_id": outcome.event_id,
                "request_id": outcome.request_id,
                "collection_id": event.collection_id,
                "item_id": event.item_id,
                "outcome": outcome.status,
                "status": outcome.http_status,
                "title": outcome.title,
                "detail": outcome.detail,
                "applied_at": utcnow(),
            }
        )

    def _write(self, event: Event) -> tuple[int, str, str, Callable[[], None]]:
        cid, iid = event.collection_id, event.item_id
        key = (cid, iid)
        existing = self.items.get(key)
        where = f"item {iid!r} in collection {cid!r}"
        if event.kind == "create":
            if existing is not None:
                raise _Rejected(409, "item-already-exists", f"{where} already exists")
            # Not copied: content dicts are only ever replaced, never changed in place.
            content = event.item or {}
            row = ItemRow(collection_id=cid, id=iid)
            status, title, detail = 201, "created", f"{where} created"
        else:
            if existing is None:
                raise _Rejected(404, "item-not-found", f"{where} does not exist")
            row = existing
            if event.kind == "update":
                content = event.item or {}
                status, title, detail = 200, "updated", f"{where} replaced"
            else:
                try:
                    content = apply_patch(existing.content, event.patch or {})
                except InvalidInput as exc:
                    raise _Rejected(400, "invalid-patch", exc.detail) from None
                status, title, detail = 200, "patched", f"{where} patched"
            if content.get("id") != iid:
                raise _Rejected(
                    400,
                    "item-id-mismatch",
                    f"{where}: the new content has id {content.get('id')!r}",
                )
        if self.max_item_bytes is not None:
            size = json_size(content)
            if size > self.max_item_bytes:
                raise _Rejected(
                    413, ITEM_TOO_LARGE, f"{where}: {too_large('it', size, self.max_item_bytes)}"
                )
        new_collection = cid not in self.collections
        if new_collection:
            self.s.add(CollectionRow(id=cid, content=minimal_collection(cid)))
        derive(row, content)
        if existing is None and self.isolated:
            self.s.add(row)
        if event.kind != "patch":
            self._settle_latest(row)

        def after() -> None:
            # Only once the savepoint held: a rolled-back event must leave no trace here.
            if new_collection:
                self.collections.add(cid)
            self.items[key] = row
            if existing is None and not self.isolated:
                self.created.append(row)
            self.written[id(row)] = row
            if row.pk is not None:
                self.stale.add(row.pk)
            if row.base_id is not None:
                current = [r for r in self.latest.get(row.base_id, []) if r.latest and r is not row]
                self.latest[row.base_id] = [*current, row] if row.latest else current

        return status, title, detail, after

    def _settle_latest(self, row: ItemRow) -> None:
        """Make ``row`` the only latest version of its dataset, unless a newer one is."""
        if not row.latest or row.base_id is None:
            return
        others = [r for r in self.latest.get(row.base_id, []) if r.latest and r is not row]
        if any(_newer(r.version, row.version) for r in others):
            # Published out of order: an older version arriving late does not take over.
            derive(row, _with_latest(row.content, False))
            return
        for other in others:
            if other.version != row.version:
                derive(other, _with_latest(other.content, False))

    # --- the end of the batch ---

    def run(self, events: Sequence[Event]) -> list[Outcome]:
        outcomes = [self.apply(event) for event in events]
        self._insert_created()
        self.s.flush()
        for pks in _chunks(self.stale):
            self.s.execute(delete(FacetRow).where(FacetRow.item_pk.in_(pks)))
        facets = [
            (row.pk, name, value)
            for row in self.written.values()
            for name, value in facet_values(row.content)
        ]
        self._insert_rows(_table(FacetRow.__tablename__), _FACET_COLUMNS, facets)
        self._add_value_words({(name, value) for _, name, value in facets if name != WORDS})
        recorded = _table(AppliedEventRow.__tablename__)
        names = list(self.recorded[0]) if self.recorded else []
        self._insert_rows(recorded, names, [tuple(r.values()) for r in self.recorded])
        return outcomes

    def _add_value_words(self, values: set[tuple[str, str]]) -> None:
        new = {value for value in values if value not in self.worded}
        rows = [{"word": w, "name": n, "value": v} for n, v in new for w in value_words(v)]
        if rows:
            conn = self.s.connection()
            dialect_of(conn).insert_new(conn, _table(ValueWordRow.__tablename__), rows)
        self.newly_worded = new

    def _insert_created(self) -> None:
        if not self.created:
            return
        table = _table(ItemRow.__tablename__)
        # derive() set every column but the key, so no default is left to fill in.
        names = [c.key for c in table.columns if c.key != "pk"]
        conn = self.s.connection()
        first = dialect_of(conn).next_keys(conn, ItemRow.pk)
        if first is not None:
            for pk, item in enumerate(self.created, start=first):
                item.pk = pk
            names.insert(0, "pk")
        self._insert_rows(table, names, [tuple(getattr(r, n) for n in names) for r in self.created])
        if first is not None:
            return
        # Their keys, for their facet rows: one lookup instead of RETURNING, which not
        # every driver gives back in order for a many-row insert.
        created: dict[str, dict[str, ItemRow]] = {}
        for r in self.created:
            created.setdefault(r.collection_id, {})[r.id] = r
        for cid, rows in created.items():
            for ids in _chunks(rows):
                found = select(ItemRow.pk, ItemRow.id).where(
                    ItemRow.collection_id == cid, ItemRow.id.in_(ids)
                )
                for pk, iid in conn.execute(found):
                    rows[iid].pk = pk

    def _insert_rows(self, table: Table, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        """Many rows straight to the driver (COPY or a multi-row INSERT), in this same
        transaction: an item has tens of facet rows."""
        conn = self.s.connection()
        dialect_of(conn).insert_rows(conn, table, names, rows)


def apply_events(
    store: ItemStore,
    events: Sequence[Event],
    *,
    before_commit: Callable[[list[Outcome]], None] | None = None,
    max_item_bytes: int | None = None,
) -> list[Outcome]:
    """Apply ``events`` in order, in one transaction; one outcome per event, same order.

    ``before_commit`` is given the outcomes while the transaction is still open; if it
    raises, nothing is committed. The consumer reports rejections there, so an outcome
    is never remembered (and a re-delivery never taken for done) unless it was reported.
    An item (created, replaced or patched) larger than ``max_item_bytes`` is rejected.
    """
    if not events:
        return []
    with store.sessions.begin() as session:
        begin_write(session)
        try:
            # The fast way: every event's checks in Python, then one flush of the batch.
            with session.begin_nested():
                batch = _Batch(
                    session, events, store.worded, isolated=False, max_item_bytes=max_item_bytes
                )
                outcomes = batch.run(events)
        except IntegrityError:
            # Another writer got to one of these items between our reads and our writes:
            # again, one savepoint per event, so only the events that clash are rejected.
            batch = _Batch(
                session, events, store.worded, isolated=True, max_item_bytes=max_item_bytes
            )
            outcomes = batch.run(events)
        if before_commit is not None:
            before_commit(outcomes)
    store.note_worded(batch.newly_worded)
    return outcomes


def record_failures(store: ItemStore, failures: Sequence[tuple[Event, Outcome]]) -> int:
    """Remember events that could not be applied at all, with the outcome reported for them.

    A re-delivery of such an event is then a duplicate carrying this outcome, instead of
    failing all over again. Events already remembered, or whose ids do not fit the table,
    are left out; returns how many were recorded.
    """
    rows: dict[str, dict[str, Any]] = {}
    for event, outcome in failures:
        if _too_long(event) or outcome.event_id in rows:
            continue
        rows[outcome.event_id] = {
            "event_id": outcome.event_id,
            "request_id": outcome.request_id,
            "collection_id": event.collection_id,
            "item_id": event.item_id,
            "outcome": outcome.status,
            "status": outcome.http_status,
            "title": outcome.title[:64],
            "detail": outcome.detail,
            "applied_at": utcnow(),
        }
    if not rows:
        return 0
    with store.sessions.begin() as session:
        for ids in _chunks(rows):
            known = select(AppliedEventRow.event_id).where(AppliedEventRow.event_id.in_(ids))
            for event_id in session.scalars(known):
                rows.pop(event_id, None)
        if rows:
            table = _table(AppliedEventRow.__tablename__)
            session.connection().execute(insert(table), list(rows.values()))
    return len(rows)
