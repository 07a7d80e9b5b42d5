"""tokens remember the token that minted them

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens minted before this revision have no known parent: they stay independent.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(16), nullable=True))
        batch.create_index("ix_api_tokens_parent_id", ["parent_id"])
        batch.create_foreign_key(
            "fk_api_tokens_parent_id_api_tokens",
            "api_tokens",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        # MariaDB keeps the index while a foreign key needs it: the key goes first.
        batch.drop_constraint("fk_api_tokens_parent_id_api_tokens", type_="foreignkey")
        batch.drop_index("ix_api_tokens_parent_id")
        batch.drop_column("parent_id")
