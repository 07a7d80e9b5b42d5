"""job_schedules: periodic jobs, their cron expression and their next run

Revision ID: jobs_0002
Revises: jobs_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "jobs_0002"
down_revision = "jobs_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_schedules",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("task", sa.String(512), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_run", sa.DateTime(), nullable=True),
        # Whole minutes (cron's), compared for equality when a scheduler claims a run.
        sa.Column("next_run", sa.DateTime(), nullable=True),
        sa.Column("last_job_id", sa.String(64), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_schedules"),
        sa.UniqueConstraint("name", name="uq_job_schedules_name"),
    )
    op.create_index("ix_job_schedules_next_run", "job_schedules", ["next_run"])


def downgrade() -> None:
    op.drop_table("job_schedules")
