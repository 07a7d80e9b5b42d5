"""What a search matches, as facet sets and column conditions, and the SQL that finds it.

A filter compiles to a :class:`Where`: sets of items taken from ``catalog_facets`` that
an item must be in (and sets it must not be in), and conditions on ``catalog_items``'s
own columns. The sets become one query on the facets table before any item row is read:
the smallest set drives, and each other set is an index probe per driving row::

    SELECT a.item_pk FROM catalog_facets a
    WHERE a.name = 'cmip6:variable_id' AND a.value = 'tas'
      AND EXISTS (SELECT 1 FROM catalog_facets f WHERE f.item_pk = a.item_pk
                  AND f.name = 'cmip6:experiment_id' AND f.value = 'historical')

On SQLite that is one index seek per row of the smallest set, whatever the size of the
others; PostgreSQL makes it a merge or hash semi-join, with statistics or without, where
``pk IN (...) AND pk IN (...)`` without statistics became a nested loop over both whole
sets. "Smallest" comes from :class:`SetSizes`, a cache of value counts: it only orders
the work, so a stale count costs time, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    column,
    func,
    not_,
    or_,
    select,
    table,
    true,
    union,
)
from sqlalchemy.orm import Session, sessionmaker

from strato.caching import LRU
from strato.catalog.store import WORDS, FacetRow, ItemRow, ValueWordRow

Condition = ColumnElement[bool]
# The facets table as a bare table clause: aliasing it per leaf costs a fraction of
# aliasing the ORM entity, and a search builds several aliases per request.
_FACETS = table(
    "catalog_facets", column("item_pk", Integer), column("name", String), column("value", String)
)
ValueTest = Callable[[ColumnElement[Any]], Condition]
# (name, value) counts kept: a few dozen bytes each; one forgotten costs a count query.
MAX_SIZES = 100_000


@dataclass(frozen=True)
class Leaf:
    """The items with a row ``name`` whose value passes ``test``.

    ``values`` are the values an equality or ``in`` test accepts (what sizes are known
    for, and what :mod:`strato.catalog.search.fast_statements` binds in a compiled statement in
    place of ``test``); None for any other test.
    """

    name: str
    test: ValueTest | None = None
    values: tuple[str, ...] | None = None

    def on(self, facets: Any) -> Condition:
        """The condition on one alias of the facets table."""
        name: Condition = facets.name == self.name
        return name if self.test is None else and_(name, self.test(facets.value))


# A union of leaves: an item is in it when it is in any of them.
FacetSet = tuple[Leaf, ...]


@dataclass
class Where:
    """A conjunction: in each of ``sets``, in none of ``excluded``, and ``conditions``."""

    sets: list[FacetSet] = field(default_factory=list)
    excluded: list[FacetSet] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)

    @staticmethod
    def of(condition: Condition) -> Where:
        return Where(conditions=[condition])

    @staticmethod
    def all(parts: Sequence[Where]) -> Where:
        return Where(
            [s for p in parts for s in p.sets],
            [s for p in parts for s in p.excluded],
            [c for p in parts for c in p.conditions],
        )

    def single_set(self) -> FacetSet | None:
        if len(self.sets) == 1 and not self.excluded and not self.conditions:
            return self.sets[0]
        return None

    def single_exclusion(self) -> FacetSet | None:
        if len(self.excluded) == 1 and not self.sets and not self.conditions:
            return self.excluded[0]
        return None


def any_of(parts: Sequence[Where], sql: SqlBuilder) -> Where:
    """The disjunction of ``parts``: still a set when each part is one."""
    singles = [p.single_set() for p in parts]
    if all(s is not None for s in singles):
        return Where(sets=[tuple(leaf for s in singles if s is not None for leaf in s)])
    return Where.of(or_(*(sql.condition(p) for p in parts)))


def negation(part: Where, sql: SqlBuilder) -> Where:
    single = part.single_set()
    if single is not None:
        return Where(excluded=[single])
    excluded = part.single_exclusion()
    if excluded is not None:
        return Where(sets=[excluded])
    return Where.of(not_(sql.condition(part)))


@dataclass(frozen=True)
class Matching:
    conditions: list[Condition]
    count: Select[Any]


class SetSizes:
    """How many facet rows each (name, value) has, read when first asked, kept a while."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 300.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._counts: LRU[tuple[str, str], int] = LRU(MAX_SIZES, ttl=ttl)

    def size(self, leaf: Leaf) -> float:
        if leaf.values is None:
            return float("inf")
        known: dict[str, int] = {}
        for value in leaf.values:
            count = self._counts.get((leaf.name, value))
            if count is not None:
                known[value] = count
        missing = [v for v in leaf.values if v not in known]
        if missing:
            counted = dict.fromkeys(missing, 0)
            with self.sessions() as s:
                rows = s.execute(
                    select(FacetRow.value, func.count())
                    .where(FacetRow.name == leaf.name, FacetRow.value.in_(missing))
                    .group_by(FacetRow.value)
                )
                counted.update({value: int(count) for value, count in rows})
            for value, count in counted.items():
                self._counts.put((leaf.name, value), count)
            known.update(counted)
        return float(sum(known.values()))


class WordIndex:
    """The items free text finds by a word: those with it in their word rows, and those
    with a facet value that has it (``catalog_value_words``, read at each search: a new
    value is found as soon as its item is)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def facet_set(self, words: Sequence[str]) -> FacetSet:
        """The items with any of ``words``."""
        wanted = tuple(words)
        values: dict[str, set[str]] = {}
        with self.sessions() as s:
            found = select(ValueWordRow.name, ValueWordRow.value).where(
                ValueWordRow.word.in_(wanted)
            )
            for name, value in s.execute(found):
                values.setdefault(name, set()).add(value)
        leaves = [Leaf(WORDS, _in(wanted), wanted)]
        for name, found_values in sorted(values.items()):
            ordered = tuple(sorted(found_values))
            leaves.append(Leaf(name, _in(ordered), ordered))
        return tuple(leaves)


def _in(values: tuple[str, ...]) -> ValueTest:
    return lambda column: column.in_(values)


class SqlBuilder:
    """Turns a :class:`Where` into SQL on ``catalog_items``, the smallest set driving."""

    def __init__(self, sizes: SetSizes, words: WordIndex) -> None:
        self.sizes = sizes
        self.words = words

    def _size(self, facet_set: FacetSet) -> float:
        return sum(self.sizes.size(leaf) for leaf in facet_set)

    def order_sets(self, sets: Sequence[FacetSet]) -> list[FacetSet]:
        """``sets`` in the order the SQL takes them: the smallest, which drives, first."""
        return sorted(sets, key=self._size)

    def item_pks(self, where: Where) -> Select[Any] | None:
        """The pks of the items in every set and in no excluded one; None without sets."""
        if not where.sets:
            return None
        ordered = self.order_sets(where.sets)
        driver, probes = ordered[0], ordered[1:]
        selects = []
        for leaf in driver:
            a = _FACETS.alias().c
            tests = [leaf.on(a)]
            tests += [self._probe(s, a.item_pk) for s in probes]
            tests += [not_(self._probe(s, a.item_pk)) for s in where.excluded]
            selects.append(select(a.item_pk).where(*tests))
        if len(selects) == 1:
            return selects[0]
        # A compound in a subquery: SQLite takes no parenthesised compound members.
        compound = union(*selects).subquery()
        return select(compound.c.item_pk)

    @staticmethod
    def _probe(facet_set: FacetSet, item_pk: Any) -> Condition:
        tests = []
        for leaf in facet_set:
            f = _FACETS.alias().c
            tests.append(select(f.item_pk).where(f.item_pk == item_pk, leaf.on(f)).exists())
        return or_(*tests)

    def matching(self, where: Where, *, shared: bool = False) -> Matching:
        """The conditions on ``catalog_items`` and the count of what ``where`` matches.

        ``shared``: the pks of the sets as a CTE that the conditions and the count both
        read, for one statement that has both (engines compute such a CTE once).
        """
        pks = self.item_pks(where)
        conditions = list(where.conditions)
        if pks is None:
            conditions += [not_(self._probe(s, ItemRow.pk)) for s in where.excluded]
            return Matching(conditions, self._count_items(conditions))
        if shared:
            cte = pks.cte("matched")
            pks = select(cte.c.item_pk)
        conditions.insert(0, ItemRow.pk.in_(pks))
        if where.conditions:
            return Matching(conditions, self._count_items(conditions))
        # From the facets alone; a list may repeat a value, so each item once.
        found = pks.subquery()
        return Matching(conditions, select(func.count(found.c.item_pk.distinct())))

    @staticmethod
    def _count_items(conditions: list[Condition]) -> Select[Any]:
        # Not correlated: a page's statement has catalog_items in its FROM too.
        return select(func.count()).select_from(ItemRow).where(*conditions).correlate(None)

    def conditions(self, where: Where) -> list[Condition]:
        """WHERE conditions on ``catalog_items``."""
        return self.matching(where).conditions

    def condition(self, where: Where) -> Condition:
        return and_(true(), *self.conditions(where))

    def count(self, where: Where) -> Select[Any]:
        """How many items match, read from the facets alone when that is enough."""
        return self.matching(where).count
