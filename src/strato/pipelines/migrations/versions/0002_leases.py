"""pipeline_runs: who drives each active run (a lease) and a cancel asked elsewhere

Revision ID: pipelines_0002
Revises: pipelines_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "pipelines_0002"
down_revision = "pipelines_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        # The server or worker driving the run: its node name (a restarted node takes
        # back its own runs at once), the driver's token (one per process), and until
        # when it holds the run unless it renews (then anyone may take it up).
        batch.add_column(sa.Column("lease_node", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_holder", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
        # A cancel asked of a server that does not drive the run, for its driver to see.
        batch.add_column(sa.Column("cancel_requested", sa.DateTime(), nullable=True))
    op.create_index("ix_pipeline_runs_lease_until", "pipeline_runs", ["lease_until"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_runs_lease_until", "pipeline_runs")
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_until")
        batch.drop_column("lease_holder")
        batch.drop_column("lease_node")
