"""Which facets a node has, and their values, read from the (name, value) index.

``SELECT DISTINCT name FROM catalog_facets`` reads every row (millions at 100k items):
none of the three engines skips through an index by itself. A recursive query that asks
for the next name after the last one found does, with one index seek per distinct name
or value, on SQLite, PostgreSQL and MariaDB alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from strato.caching import Kept
from strato.catalog.store import WORDS, CollectionRow, is_facet

# A skip scan of the facet names: one index probe per distinct name.
_NAME_SCAN = """
    WITH RECURSIVE names(name) AS (
        SELECT MIN(name) FROM catalog_facets
        UNION ALL
        SELECT (SELECT MIN(f.name) FROM catalog_facets f WHERE f.name > names.name)
        FROM names WHERE names.name IS NOT NULL
    )
"""

_NAMES = text(
    _NAME_SCAN  # noqa: S608 - constant text
    + "SELECT name FROM names WHERE name IS NOT NULL"
)

# "(SELECT ... LIMIT 1) IS NOT NULL", not EXISTS: PostgreSQL turns an EXISTS into a join
# hashing every item of the collection, when the first match is all that is needed.
_NAMES_IN_COLLECTION = text(
    _NAME_SCAN  # noqa: S608 - constant text, values are bound parameters
    + """
    SELECT name FROM names WHERE name IS NOT NULL AND name <> :words AND (
        SELECT 1 FROM catalog_facets f JOIN catalog_items i ON i.pk = f.item_pk
        WHERE f.name = names.name AND i.collection_id = :collection LIMIT 1
    ) IS NOT NULL
    """
)

# Stops one value past :cap, so that "more than cap" can be told from "exactly cap".
# A skip scan: one index probe per distinct value, however many rows each value has.
_DISTINCT_VALUES = """
    WITH RECURSIVE vals(value, n) AS (
        SELECT MIN(value), 1 FROM catalog_facets WHERE name = :name
        UNION ALL
        SELECT (
            SELECT MIN(f.value) FROM catalog_facets f
            WHERE f.name = :name AND f.value > vals.value
        ), n + 1
        FROM vals WHERE vals.value IS NOT NULL AND n <= :cap
    )
    SELECT value FROM vals WHERE value IS NOT NULL
"""

_VALUES_ALL = text(_DISTINCT_VALUES)

_VALUES_IN_COLLECTION = text(
    _DISTINCT_VALUES  # noqa: S608 - constant text, values are bound parameters
    + """
    AND (
        SELECT 1 FROM catalog_facets f JOIN catalog_items i ON i.pk = f.item_pk
        WHERE f.name = :name AND f.value = vals.value AND i.collection_id = :collection
        LIMIT 1
    ) IS NOT NULL
    """
)


def facet_names(session: Session, collection_id: str | None = None) -> list[str]:
    """The facet names items have (in ``collection_id``, if given), sorted."""
    if collection_id is None:
        rows = session.execute(_NAMES)
    else:
        rows = session.execute(_NAMES_IN_COLLECTION, {"collection": collection_id, "words": WORDS})
    return [name for (name,) in rows if name != WORDS]


def distinct_values(
    session: Session, name: str, *, cap: int, collection_id: str | None = None
) -> list[str] | None:
    """The distinct values of facet ``name``, sorted; None when there are more than ``cap``."""
    params: dict[str, Any] = {"name": name, "cap": cap}
    if collection_id is None:
        rows = session.execute(_VALUES_ALL, params)
    else:
        rows = session.execute(_VALUES_IN_COLLECTION, {**params, "collection": collection_id})
    values = [value for (value,) in rows]
    # The scan stops one past the cap, so more than cap found means "too many" globally.
    return None if len(values) > cap else values


def summary_names(session: Session) -> set[str]:
    """Facet names the collections' ``summaries`` announce, whether items have them yet."""
    names: set[str] = set()
    for content in session.scalars(select(CollectionRow.content)):
        summaries = content.get("summaries") if isinstance(content, dict) else None
        if isinstance(summaries, dict):
            names.update(n for n in summaries if isinstance(n, str) and is_facet(n))
    return names


class KnownFacets:
    """The facet names filters may use, cached; a name not in the cache re-reads it."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 30.0) -> None:
        self.sessions = sessions
        self._names = Kept(self._read, ttl)

    def _read(self) -> frozenset[str]:
        with self.sessions() as s:
            return frozenset(facet_names(s)) | summary_names(s)

    def names(self, *, refresh: bool = False) -> frozenset[str]:
        return self._names.get(refresh=refresh)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not is_facet(name):
            return False
        return name in self.names() or name in self.names(refresh=True)
