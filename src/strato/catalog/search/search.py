"""Searching a node's items: the STAC item search, its filters, sorting, paging and counts.

Core logic without FastAPI: the STAC API, the legacy search and the web pages all ask here.

A page is one statement: the pks and sort keys of the page's rows, picked and ordered
without touching the items' JSON, joined back to ``catalog_items`` for the content of
just those rows, with the count of every match as a scalar subquery beside them.
Filters are built in :mod:`strato.catalog.search.filters`, orders and tokens in
:mod:`strato.catalog.search.paging`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import cql2
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from strato.catalog.model.cql2_limits import FilterLimits, check_text
from strato.catalog.model.item_limits import fitting
from strato.catalog.search import paging
from strato.catalog.search.collection_search import search_collections
from strato.catalog.search.extents import bbox_condition, time_condition
from strato.catalog.search.facets import KnownFacets, facet_names
from strato.catalog.search.fast_statements import StatementCache
from strato.catalog.search.filters import FIELDS, FilterCompiler
from strato.catalog.search.queryables import queryables as queryables_of
from strato.catalog.search.where import SetSizes, SqlBuilder, Where, WordIndex
from strato.catalog.store import CollectionRow, FacetRow, ItemRow
from strato.db import dialect_of
from strato.errors import InvalidInput

Direction = Literal["asc", "desc"]

# The aggregation over collections, beside one per facet.
COLLECTION_AGGREGATION = "collection"


@dataclass(frozen=True)
class SearchRequest:
    """One item search, already parsed from GET parameters or a POST body.

    ``filter`` is CQL2 JSON (the API layer turns CQL2 text into JSON first, with
    :func:`parse_cql2_text`; a string is taken as CQL2 text too); ``query`` is the STAC
    query extension's object. ``offset`` is used only when there is no ``token``.
    """

    collections: Sequence[str] = ()
    ids: Sequence[str] = ()
    bbox: tuple[float, float, float, float] | None = None
    # A closed or half-open interval; a single instant is (t, t).
    datetime: tuple[datetime | None, datetime | None] | None = None
    filter: Mapping[str, Any] | None = None
    query: Mapping[str, Mapping[str, Any]] | None = None
    q: Sequence[str] = ()
    sortby: Sequence[tuple[str, Direction]] = ()
    limit: int = 10
    token: str | None = None
    # For the legacy Solr-style search, which pages by offset instead of by token.
    offset: int = 0
    # When this node last wrote the item (Solr's _timestamp), a closed or half-open interval.
    indexed: tuple[dt.datetime | None, dt.datetime | None] | None = None


@dataclass
class SearchPage:
    items: list[dict[str, Any]]
    # How many items match in all (numberMatched).
    matched: int
    next_token: str | None = None
    prev_token: str | None = None
    # When this node last wrote each item, in the order of ``items``.
    indexed: list[datetime] = field(default_factory=list)


@dataclass
class Bucket:
    key: str
    count: int


@dataclass
class Aggregation:
    name: str
    buckets: list[Bucket] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """A request checked and turned into SQL parts."""

    where: Where
    keys: list[paging.SortKey]
    after: list[Any] | None
    backward: bool
    limit: int
    offset: int


class CatalogSearch:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_limit: int = 10_000,
        filter_limits: FilterLimits | None = None,
        compiled_statements: bool = True,
    ) -> None:
        self.sessions = sessions
        self.max_limit = max_limit
        self.filter_limits = filter_limits or FilterLimits()
        self.facets = KnownFacets(sessions)
        # Sessions bound to the engine: compiled statements and the filters' SQL are its own.
        bind = sessions.kw["bind"]
        self.dialect = dialect_of(bind)
        self.sql = SqlBuilder(SetSizes(sessions), WordIndex(sessions))
        # The fast path of facet searches, unless turned off (catalog.compiled_statements).
        self.statements = (
            StatementCache(bind.dialect, self.sql.order_sets) if compiled_statements else None
        )
        self.compiler = FilterCompiler(
            self.facets.__contains__,
            self._some_queryables,
            self.dialect,
            self.sql,
            limits=self.filter_limits,
        )

    # --- item search ---

    def search(self, request: SearchRequest, *, max_bytes: int | None = None) -> SearchPage:
        """The page of items ``request`` asks for; bad input raises InvalidInput naming it.

        With ``max_bytes``, the page stops before the item that would take its items' JSON
        beyond that many bytes (it keeps at least one) and has a next token from there.
        """
        plan = self._plan(request)
        with self.sessions() as s:
            conn = s.connection()
            if (
                self.statements is not None
                and plan.after is None
                and StatementCache.eligible(plan.where)
            ):
                shaped_by = (tuple(map(tuple, request.sortby)), plan.limit, plan.offset)
                rows = self.statements.rows(
                    conn, plan.where, shaped_by, lambda w: self._page(replace(plan, where=w))
                )
            else:
                rows = list(conn.execute(self._page(plan)).all())
            if rows:
                matched = int(rows[0].matched)
            elif plan.after is not None or plan.offset:
                # Past the end: the count rode along with no row.
                matched = int(s.scalar(self.sql.count(plan.where)) or 0)
            else:
                matched = 0
        more = len(rows) > plan.limit
        rows = rows[: plan.limit]
        if max_bytes is not None:
            # In the order read, nearest the token first, so a cut page stays contiguous.
            kept = fitting([row.content for row in rows], max_bytes)
            if kept < len(rows):
                rows, more = rows[:kept], True
        if plan.backward:
            rows.reverse()
        n = len(plan.keys)

        def token(row: Any, backward: bool) -> str:
            values = [getattr(row, f"k{i}") for i in range(n)]
            return paging.encode_token(plan.keys, values, backward=backward)

        next_token = prev_token = None
        if rows:
            came_from_before = plan.after is not None or plan.offset > 0
            if plan.backward:
                next_token = token(rows[-1], False)
                prev_token = token(rows[0], True) if more else None
            else:
                next_token = token(rows[-1], False) if more else None
                prev_token = token(rows[0], True) if came_from_before else None
        return SearchPage(
            items=[dict(row.content) for row in rows],
            matched=matched,
            next_token=next_token,
            prev_token=prev_token,
            indexed=[row.updated_at for row in rows],
        )

    def explain_sql(self, request: SearchRequest) -> str:
        """The SQL of the statement :meth:`search` runs for ``request``, values inlined.

        For benchmarks and EXPLAIN: run it directly to see what the database alone costs.
        """
        statement = self._page(self._plan(request))
        bind = self.sessions.kw["bind"]
        return str(statement.compile(bind, compile_kwargs={"literal_binds": True}))

    def page_statement(self, request: SearchRequest) -> Select[Any]:
        """The statement :meth:`search` runs for ``request``, with bound parameters."""
        return self._page(self._plan(request))

    def count(self, request: SearchRequest) -> int:
        """How many items ``request`` matches (``numberMatched``), without reading any."""
        where = self.where(request)
        with self.sessions() as s:
            return int(s.scalar(self.sql.count(where)) or 0)

    def conditions(self, request: SearchRequest) -> list[ColumnElement[bool]]:
        """The WHERE conditions on ``catalog_items`` of what ``request`` asks for."""
        return self.sql.conditions(self.where(request))

    def where(self, request: SearchRequest) -> Where:
        """What ``request`` asks for, checked; InvalidInput names what is wrong."""
        parts: list[Where] = []
        if request.ids:
            # Ids are indexed under their collection: each (collection, id) pair is one
            # lookup. Without collections, all of them: every item's collection has a
            # row (the applier makes one) and none is ever removed. Given as a subquery
            # either way, so no planner prefers reading a whole collection in time order.
            collections = select(CollectionRow.id)
            if request.collections:
                collections = collections.where(CollectionRow.id.in_(list(request.collections)))
            ids = ItemRow.id.in_(list(request.ids))
            parts.append(Where.of(and_(ItemRow.collection_id.in_(collections), ids)))
        elif request.collections:
            parts.append(Where.of(ItemRow.collection_id.in_(list(request.collections))))
        if request.bbox is not None:
            parts.append(Where.of(bbox_condition(request.bbox)))
        if request.datetime is not None:
            start, end = request.datetime
            for t in (start, end):
                if t is not None and t.tzinfo is None:
                    raise InvalidInput("datetime: give times with a time zone (or Z)")
            parts.append(Where.of(time_condition(start, end)))
        if request.indexed is not None:
            start, end = request.indexed
            for t in (start, end):
                if t is not None and t.tzinfo is None:
                    raise InvalidInput("indexed: give times with a time zone (or Z)")
            if start is not None:
                parts.append(Where.of(ItemRow.updated_at >= start))
            if end is not None:
                parts.append(Where.of(ItemRow.updated_at <= end))
        if request.query:
            parts.append(self.compiler.query(request.query))
        if request.q:
            parts.append(self.compiler.free_text(request.q))
        if request.filter is not None:
            expression = request.filter
            if isinstance(expression, str):
                expression = self.parse_text(expression)
            parts.append(self.compiler.cql2(expression))
        return Where.all(parts)

    def _plan(self, request: SearchRequest) -> _Plan:
        limit = request.limit
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= self.max_limit
        ):
            raise InvalidInput(f"limit must be between 1 and {self.max_limit}, not {limit!r}")
        offset = request.offset
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be 0 or more, not {offset!r}")
        keys = paging.sort_keys(request.sortby)
        after: list[Any] | None = None
        backward = False
        if request.token:
            after, backward = paging.decode_token(request.token, keys)
            offset = 0
        return _Plan(self.where(request), keys, after, backward, limit, offset)

    def _page(self, plan: _Plan) -> Select[Any]:
        order = [k.reverse for k in plan.keys] if plan.backward else plan.keys
        labels = [k.expr.label(f"k{i}") for i, k in enumerate(plan.keys)]
        matching = self.sql.matching(plan.where, shared=True)
        inner = select(*labels).where(*matching.conditions)
        if plan.after is not None:
            inner = inner.where(
                paging.after(order, plan.after, nulls_high=self.dialect.nulls_sort_high)
            )
        inner = inner.order_by(*(k.order(label) for k, label in zip(order, labels, strict=True)))
        page = inner.limit(plan.limit + 1).offset(plan.offset).subquery("page")
        pk = page.c[f"k{len(plan.keys) - 1}"]
        keys = [page.c[f"k{i}"] for i in range(len(plan.keys))]
        return (
            select(
                ItemRow.content,
                ItemRow.updated_at,
                *keys,
                matching.count.scalar_subquery().label("matched"),
            )
            .select_from(page)
            .join(ItemRow, ItemRow.pk == pk)
            .order_by(*(k.order(c) for k, c in zip(order, keys, strict=True)))
        )

    # --- aggregation ---

    def aggregations(self) -> list[str]:
        """The names :meth:`aggregate` takes: ``collection`` and each facet items have."""
        with self.sessions() as s:
            return [COLLECTION_AGGREGATION, *facet_names(s)]

    def aggregate(self, request: SearchRequest, names: Sequence[str]) -> list[Aggregation]:
        """Term counts of each facet in ``names`` over the items ``request`` matches.

        A count is of items: an item with a value twice in a list counts once. Buckets
        come by count, largest first, then by key. ``limit``, ``token`` and ``offset``
        of ``request`` do not apply.
        """
        wanted = list(dict.fromkeys(names))
        facets = [n for n in wanted if n != COLLECTION_AGGREGATION]
        unknown = [n for n in facets if n not in self.facets]
        if unknown:
            raise InvalidInput(
                f"cannot aggregate {', '.join(map(repr, unknown))}: aggregations are "
                f"{', '.join(self.aggregations())}"
            )
        where = self.where(request)
        conditions = self.sql.conditions(where)
        counts: dict[str, dict[str, int]] = {n: {} for n in wanted}
        with self.sessions() as s:
            if facets:
                for name, value, count in s.execute(self._term_counts(where, facets)):
                    counts[name][value] = int(count)
            if COLLECTION_AGGREGATION in counts:
                by_collection = (
                    select(ItemRow.collection_id, func.count())
                    .where(*conditions)
                    .group_by(ItemRow.collection_id)
                )
                for key, count in s.execute(by_collection):
                    counts[COLLECTION_AGGREGATION][key] = int(count)
        return [
            Aggregation(
                name,
                [
                    Bucket(k, c)
                    for k, c in sorted(counts[name].items(), key=lambda kc: (-kc[1], kc[0]))
                ],
            )
            for name in wanted
        ]

    def _term_counts(self, where: Where, names: list[str]) -> Select[str, str, int]:
        counted = select(FacetRow.name, FacetRow.value, func.count(FacetRow.item_pk.distinct()))
        pks = self.sql.item_pks(where)
        if pks is not None:
            # Facet tests pick the items: from each, its rows of the names counted, by the
            # (item_pk, name) index, instead of every row of those names.
            if where.conditions:
                pks = select(ItemRow.pk.label("item_pk")).where(*self.sql.conditions(where))
            # DISTINCT also keeps SQLite from flattening it into a scan of every row.
            matched = pks.distinct().subquery()
            return (
                counted.select_from(matched)
                .join(FacetRow, FacetRow.item_pk == matched.c.item_pk)
                .where(FacetRow.name.in_(names))
                .group_by(FacetRow.name, FacetRow.value)
            )
        counted = counted.where(FacetRow.name.in_(names))
        if where.conditions or where.excluded:
            matched_items = select(ItemRow.pk).where(*self.sql.conditions(where))
            counted = counted.where(FacetRow.item_pk.in_(matched_items))
        return counted.group_by(FacetRow.name, FacetRow.value)

    # --- queryables and collections ---

    def queryables(
        self, collection_id: str | None = None, *, url: str | None = None
    ) -> dict[str, Any]:
        """The JSON Schema of the properties filters may use (STAC queryables).

        ``url`` is the schema's ``$id`` (the API layer knows where it is served);
        by default a path relative to the STAC API's root. Unknown collection: NotFound.
        """
        with self.sessions() as s:
            return queryables_of(s, collection_id, url=url)

    def collections(
        self,
        *,
        q: Sequence[str] = (),
        bbox: tuple[float, float, float, float] | None = None,
        datetime: tuple[datetime | None, datetime | None] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Collections matching a collection search, and how many match in all.

        See :mod:`strato.catalog.search.collection_search`.
        """
        with self.sessions() as s:
            return search_collections(
                s,
                q=q,
                bbox=bbox,
                interval=datetime,
                limit=limit,
                offset=offset,
                max_limit=self.max_limit,
            )

    def parse_text(self, text: str) -> dict[str, Any]:
        """CQL2 text as CQL2 JSON, within this node's filter limits."""
        return parse_cql2_text(text, self.filter_limits)

    def _some_queryables(self) -> list[str]:
        facets = sorted(self.facets.names())
        return [*FIELDS, *facets[:6], *(["..."] if len(facets) > 6 else [])]


# --- CQL2 text ---

_POSITION = re.compile(r"-->\s*(\d+):(\d+)")
_EXPECTED = re.compile(r"=\s*(.+)$", re.DOTALL)


def parse_cql2_text(text: str, limits: FilterLimits | None = None) -> dict[str, Any]:
    """CQL2 text as CQL2 JSON; malformed text raises InvalidInput saying what and where.

    Text beyond ``limits`` (default :class:`FilterLimits`) is refused before the native
    parser sees it: deep enough nesting crashes that parser's process.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("filter: the CQL2 text is empty")
    check_text(text, limits or FilterLimits())
    try:
        parsed: dict[str, Any] = cql2.parse_text(text).to_json()
    except Exception as exc:  # the parser's errors carry no structure, only a message
        raise InvalidInput(_parse_error(text, str(exc))) from None
    return parsed


def _parse_error(text: str, message: str) -> str:
    where = _POSITION.search(message)
    expected = _EXPECTED.search(message)
    what = " ".join(expected.group(1).split()) if expected else message.strip().splitlines()[-1]
    if where is None:
        return f"filter: the CQL2 text is malformed: {what}"
    line, column = int(where.group(1)), int(where.group(2))
    lines = text.splitlines() or [""]
    rest = lines[line - 1][column - 1 :] if line <= len(lines) else ""
    near = f"at {rest[:20]!r}" if rest.strip() else "at the end of the text"
    return f"filter: the CQL2 text is malformed at line {line}, column {column} ({near}): {what}"
