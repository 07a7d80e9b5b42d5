"""Item-search statements compiled once per shape and run on the driver's cursor.

Building a page's statement with SQLAlchemy, deriving its cache key and setting up its
result cost about as much as the database's own work for a facet search (0.7 ms to build,
0.5 ms more to execute, against 1.1 ms in SQLite on 100,000 items). Yet two facet
searches that differ only in their values run the same SQL with other parameters. So a
search made only of facet sets (equalities and ``in`` lists, the common case, and what
free text and the legacy search make too) is keyed by its *shape*: the facet names,
how many values each takes, the order the sets are joined in, the sort, limit and
offset. The first search of a shape builds the statement as
:class:`~strato.catalog.search.search.CatalogSearch` always does, with a named parameter for
each value, and compiles it; later ones bind their values and run the SQL text on the
DB-API cursor, through the same result processors SQLAlchemy would use.

Searches with other conditions (times, bounding boxes, comparisons, paging tokens) take
the usual way; so does any statement whose SQL needs rendering per execution.

A fast path: ``catalog.compiled_statements = false`` turns it off (every search builds
its statement with SQLAlchemy), and tests/catalog/test_search.py checks both ways give
the same pages. What justifies it: ``bench/catalog_search.py --count 10000`` through the
STAC API, search p50 3.1-7.3 ms with it against 4.8-9.1 ms off, faster in each of four
pairs of runs by 0.9-2.9 ms (1.2-1.5x; bench/RESULTS.md, catalog search, compiled
statement cache off and on, 2026-12-04).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Connection, Select, bindparam
from sqlalchemy.engine import Dialect

from strato.caching import LRU
from strato.catalog.search.where import FacetSet, Leaf, ValueTest, Where
from strato.db import driver_cursor

# Distinct shapes kept; each is one compiled statement of a few kilobytes. Under load of
# mostly new shapes (bench/soak.py) a bigger cache hits no more often, and what it holds
# was allocated among request garbage long after start-up, pinning memory pages.
MAX_SHAPES = 128


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Parameter names in the order of the SQL's placeholders; None for named ones.
    order: tuple[str, ...] | None
    # The parameters that are not facet values (names, limit, offset), already bound.
    fixed: dict[str, Any]
    binders: dict[str, Callable[[Any], Any]]
    processors: list[Callable[[Any], Any] | None]
    row: Callable[..., Any]


def _named(facet_set: FacetSet, tag: str) -> list[list[tuple[str, Any]]]:
    """Each leaf's values under the parameter names a template gives them."""
    named = []
    for i, leaf in enumerate(facet_set):
        assert leaf.values is not None
        named.append([(f"{tag}_{i}_{k}", v) for k, v in enumerate(leaf.values)])
    return named


def _template(facet_set: FacetSet, tag: str) -> FacetSet:
    """``facet_set`` with a named parameter in place of each value."""
    return tuple(
        Leaf(leaf.name, _test([bindparam(n, v) for n, v in named]), leaf.values)
        for leaf, named in zip(facet_set, _named(facet_set, tag), strict=True)
    )


def _test(params: list[BindParameter[Any]]) -> ValueTest:
    if len(params) == 1:
        return lambda column: column == params[0]
    return lambda column: column.in_(params)


# Row classes by column names: the page statements select a handful of column lists.
# A class per shape (a type, its methods and their code) was the largest part of an
# entry, and one evicted became garbage that only a full collection frees.
_ROWS: LRU[tuple[str, ...], Callable[..., Any]] = LRU(64)


def _row_class(keys: tuple[str, ...]) -> Callable[..., Any]:
    row = _ROWS.get(keys)
    if row is None:
        # Two threads making the same class at once keep the first one's.
        row = _ROWS.setdefault(keys, namedtuple("Row", keys))
    return row


def _shape(facet_set: FacetSet) -> tuple[tuple[str, int], ...]:
    return tuple((leaf.name, len(leaf.values or ())) for leaf in facet_set)


class StatementCache:
    """Compiled page statements by shape, for searches made only of facet sets."""

    def __len__(self) -> int:
        return len(self._entries)

    def __init__(self, dialect: Dialect, order_sets: Callable[[list[FacetSet]], list[FacetSet]]):
        self.dialect = dialect
        # How the builder orders a search's sets (smallest first): part of the shape,
        # since the SQL drives from the first.
        self.order_sets = order_sets
        self._entries: LRU[Hashable, _Compiled] = LRU(MAX_SHAPES)

    @staticmethod
    def eligible(where: Where) -> bool:
        return not where.conditions and all(
            leaf.values is not None for s in (*where.sets, *where.excluded) for leaf in s
        )

    def rows(
        self,
        conn: Connection,
        where: Where,
        extra: Hashable,
        build: Callable[[Where], Select[Any]],
    ) -> list[Any]:
        """The rows of the page statement ``build`` makes for ``where``; ``extra`` is
        what else shapes it (sort, limit, offset). ``where`` must be :meth:`eligible`."""
        ordered = self.order_sets(list(where.sets))
        key = (
            tuple(_shape(s) for s in ordered),
            tuple(_shape(s) for s in where.excluded),
            extra,
        )
        sets = [(f"s{j}", x) for j, x in enumerate(ordered)]
        excluded = [(f"x{j}", x) for j, x in enumerate(where.excluded)]
        entry = self._entries.get(key)
        if entry is None:
            # Built only for a new shape: the template holds this search's values too.
            statement = build(
                Where(
                    sets=[_template(x, tag) for tag, x in sets],
                    excluded=[_template(x, tag) for tag, x in excluded],
                )
            )
            entry = self._compile(statement)
            if entry is None:
                return list(conn.execute(statement).all())
            self._entries.put(key, entry)
        values = {n: v for tag, x in (*sets, *excluded) for leaf in _named(x, tag) for n, v in leaf}
        return self._run(conn, entry, values)

    def _compile(self, statement: Select[Any]) -> _Compiled | None:
        dialect = self.dialect
        compiled = statement.compile(dialect=dialect)
        sql = compiled.string
        if "POSTCOMPILE" in sql or compiled.literal_execute_params:
            return None  # rendered anew per execution: not a fixed text
        binders: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binders[name] = processor
        # Values of the parameters every search of the shape shares, bound once here.
        fixed = dict(compiled.construct_params())
        for name, binder in binders.items():
            fixed[name] = binder(fixed[name])
        columns = list(statement.selected_columns)
        return _Compiled(
            sql=sql,
            order=tuple(compiled.positiontup or ()) if compiled.positional else None,
            fixed=fixed,
            binders=binders,
            processors=[
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
            ],
            row=_row_class(tuple(str(c.key) for c in columns)),
        )

    @staticmethod
    def _run(conn: Connection, entry: _Compiled, values: dict[str, Any]) -> list[Any]:
        params = dict(entry.fixed)
        for name, value in values.items():
            binder = entry.binders.get(name)
            params[name] = value if binder is None else binder(value)
        args: Sequence[Any] | dict[str, Any] = (
            params if entry.order is None else tuple(params[n] for n in entry.order)
        )
        with driver_cursor(conn, entry.sql) as cursor:
            cursor.execute(entry.sql, args)
            fetched = cursor.fetchall()
        processors = list(enumerate(entry.processors))
        rows = []
        for raw in fetched:
            cells = list(raw)
            for i, process in processors:
                if process is not None:
                    cells[i] = process(cells[i])
            rows.append(entry.row(*cells))
        return rows
