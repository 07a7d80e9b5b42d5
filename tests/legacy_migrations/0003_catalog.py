"""catalog: collections, items, facets and applied events

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_collections",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_collections"),
    )
    op.create_table(
        "catalog_items",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(128), nullable=False),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("datetime", sa.DateTime(), nullable=True),
        sa.Column("start_datetime", sa.DateTime(), nullable=True),
        sa.Column("end_datetime", sa.DateTime(), nullable=True),
        sa.Column("west", sa.Double(), nullable=True),
        sa.Column("south", sa.Double(), nullable=True),
        sa.Column("east", sa.Double(), nullable=True),
        sa.Column("north", sa.Double(), nullable=True),
        sa.Column("base_id", sa.String(255), nullable=True),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_catalog_items"),
        sa.UniqueConstraint("collection_id", "id", name="uq_catalog_items_collection_id"),
    )
    op.create_index(
        "ix_catalog_items_collection_id_datetime", "catalog_items", ["collection_id", "datetime"]
    )
    op.create_index("ix_catalog_items_base_id", "catalog_items", ["base_id"])
    op.create_index("ix_catalog_items_latest", "catalog_items", ["latest"])
    op.create_table(
        "catalog_facets",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_catalog_facets"),
        sa.ForeignKeyConstraint(
            ["item_pk"],
            ["catalog_items.pk"],
            name="fk_catalog_facets_item_pk_catalog_items",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_catalog_facets_name_value", "catalog_facets", ["name", "value", "item_pk"])
    op.create_index("ix_catalog_facets_item_pk", "catalog_facets", ["item_pk"])
    op.create_table(
        "catalog_applied_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("collection_id", sa.String(128), nullable=False),
        sa.Column("item_id", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_catalog_applied_events"),
    )
    op.create_index(
        "ix_catalog_applied_events_request_id", "catalog_applied_events", ["request_id"]
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB, which
    # needs the item_pk index for as long as the foreign key exists.
    op.drop_table("catalog_applied_events")
    op.drop_table("catalog_facets")
    op.drop_table("catalog_items")
    op.drop_table("catalog_collections")
