"""catalog search: item time extent columns, indexes for search, free-text words

Revision ID: 0004
Revises: 0003
"""

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of what strato.catalog.store did when this revision was written: a
# migration must keep meaning the same whatever the code becomes.
_WORDS = "~words"
_MAX_WORDS = 500
_WORD = re.compile(r"[^\W_]+")
_BATCH = 1000
_TIMES = ("datetime", "start_datetime", "end_datetime", "time_start", "time_end")


_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it"}
    | {"of", "on", "or", "the", "to", "with"}
)


def _searchable(word: str) -> bool:
    if len(word) < 2 or len(word) > 255 or word in _STOPWORDS:
        return False
    return not (word.isdigit() and len(word) < 4)


def _words(content: Any, facet_values: list[str]) -> list[str]:
    found: set[str] = set()
    content = content if isinstance(content, dict) else {}
    props = content.get("properties")
    props = props if isinstance(props, dict) else {}
    keywords = props.get("keywords")
    texts = [
        content.get("id"),
        props.get("title"),
        props.get("description"),
        *(keywords if isinstance(keywords, list) else []),
        *facet_values,
    ]
    for text in texts:
        if isinstance(text, str) and not text.startswith(("http://", "https://")):
            found.update(w for w in _WORD.findall(text.lower()) if _searchable(w))
    return sorted(found)[:_MAX_WORDS]


def _backfill_words(bind: sa.Connection) -> None:
    items = sa.table(
        "catalog_items", sa.column("pk", sa.Integer()), sa.column("content", sa.JSON())
    )
    facets = sa.table(
        "catalog_facets",
        sa.column("item_pk", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("value", sa.String()),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(items.c.pk, items.c.content)
            .where(items.c.pk > last)
            .order_by(items.c.pk)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        pks = [pk for pk, _ in rows]
        values: dict[int, list[str]] = {}
        for pk, value in bind.execute(
            sa.select(facets.c.item_pk, facets.c.value).where(facets.c.item_pk.in_(pks))
        ):
            values.setdefault(pk, []).append(value)
        new = [
            {"item_pk": pk, "name": _WORDS, "value": word}
            for pk, content in rows
            for word in _words(content, values.get(pk, []))
        ]
        if new:
            bind.execute(sa.insert(facets), new)
        last = pks[-1]


def upgrade() -> None:
    op.add_column("catalog_items", sa.Column("time_start", sa.DateTime(), nullable=True))
    op.add_column("catalog_items", sa.Column("time_end", sa.DateTime(), nullable=True))
    t = sa.table(
        "catalog_items",
        *(sa.column(n, sa.DateTime()) for n in _TIMES),
    )
    instant, start, end = t.c.datetime, t.c.start_datetime, t.c.end_datetime
    op.execute(
        sa.update(t).values(
            time_start=sa.func.coalesce(instant, start, end),
            time_end=sa.func.coalesce(instant, end, start),
        )
    )
    op.drop_index("ix_catalog_items_collection_id_datetime", table_name="catalog_items")
    op.create_index("ix_catalog_items_time_start", "catalog_items", ["time_start", "pk"])
    op.create_index(
        "ix_catalog_items_collection_id_time_start",
        "catalog_items",
        ["collection_id", "time_start", "pk"],
    )
    # Created before the old one goes: MariaDB's foreign key needs an index on item_pk.
    op.create_index(
        "ix_catalog_facets_item_pk_name", "catalog_facets", ["item_pk", "name", "value"]
    )
    op.drop_index("ix_catalog_facets_item_pk", table_name="catalog_facets")
    _backfill_words(op.get_bind())


def downgrade() -> None:
    facets = sa.table("catalog_facets", sa.column("name", sa.String()))
    op.execute(sa.delete(facets).where(facets.c.name == _WORDS))
    op.create_index("ix_catalog_facets_item_pk", "catalog_facets", ["item_pk"])
    op.drop_index("ix_catalog_facets_item_pk_name", table_name="catalog_facets")
    op.drop_index("ix_catalog_items_collection_id_time_start", table_name="catalog_items")
    op.drop_index("ix_catalog_items_time_start", table_name="catalog_items")
    op.create_index(
        "ix_catalog_items_collection_id_datetime", "catalog_items", ["collection_id", "datetime"]
    )
    with op.batch_alter_table("catalog_items") as batch:
        batch.drop_column("time_end")
        batch.drop_column("time_start")
