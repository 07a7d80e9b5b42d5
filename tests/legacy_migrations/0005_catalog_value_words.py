"""catalog: the words of facet values kept once per value, not once per item

Revision ID: 0005
Revises: 0004
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of what strato.catalog.store did when this revision was written: a
# migration must keep meaning the same whatever the code becomes.
_WORDS = "~words"
_WORD = re.compile(r"[^\W_]+")
_BATCH = 1000
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it"}
    | {"of", "on", "or", "the", "to", "with"}
)


def _searchable(word: str) -> bool:
    if len(word) < 2 or len(word) > 255 or word in _STOPWORDS:
        return False
    return not (word.isdigit() and len(word) < 4)


def _value_words(value: str) -> set[str]:
    if value.startswith(("http://", "https://")):
        return set()
    return {w for w in _WORD.findall(value.lower()) if _searchable(w)}


_facets = sa.table(
    "catalog_facets",
    sa.column("item_pk", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("value", sa.String()),
)
_value_words_table = sa.table(
    "catalog_value_words",
    sa.column("word", sa.String()),
    sa.column("name", sa.String()),
    sa.column("value", sa.String()),
)


def upgrade() -> None:
    op.create_table(
        "catalog_value_words",
        sa.Column("word", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("word", "name", "value", name="pk_catalog_value_words"),
    )
    # The words of the values already there. Their word rows stay: a word found both
    # ways finds the same item, and only new items go without them.
    bind = op.get_bind()
    values = bind.execute(
        sa.select(_facets.c.name, _facets.c.value).where(_facets.c.name != _WORDS).distinct()
    ).all()
    rows = [
        {"word": word, "name": name, "value": value}
        for name, value in values
        for word in sorted(_value_words(value))
    ]
    for start in range(0, len(rows), _BATCH):
        bind.execute(_value_words_table.insert(), rows[start : start + _BATCH])


def downgrade() -> None:
    # Items written since the upgrade have no word rows for their facet values' words.
    words = sa.table(
        "catalog_facets",
        sa.column("item_pk", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("value", sa.String()),
    ).alias("w")
    f, vw = _facets.alias("f"), _value_words_table.alias("vw")
    missing = (
        sa.select(f.c.item_pk, sa.literal(_WORDS), vw.c.word)
        .join(vw, sa.and_(vw.c.name == f.c.name, vw.c.value == f.c.value))
        .where(
            ~sa.exists().where(
                words.c.item_pk == f.c.item_pk, words.c.name == _WORDS, words.c.value == vw.c.word
            )
        )
        .distinct()
    )
    op.execute(_facets.insert().from_select(["item_pk", "name", "value"], missing))
    op.drop_table("catalog_value_words")
