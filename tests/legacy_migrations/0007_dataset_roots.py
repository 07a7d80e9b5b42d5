"""datasets keep the allowed roots their registration was checked against

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for the rows already there: they stay served within the server's own roots.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("allowed_roots", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("allowed_roots")
