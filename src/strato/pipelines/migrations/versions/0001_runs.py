"""pipeline_runs and pipeline_tasks: each run of a pipeline and each of its tasks

Revision ID: pipelines_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "pipelines_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(64), nullable=False),
        # Microseconds since the epoch, unique per server: the run list's order and its
        # paging key (MariaDB's datetimes keep whole seconds).
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("submitter", sa.String(255), nullable=False),
        sa.Column("project", sa.String(4096), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        # The post-run steps asked for ({"archive_to", "notify"}) and the tasks' PATH.
        sa.Column("options", sa.JSON(), nullable=False),
        # The post-run steps done since the run last started.
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )
    op.create_index("ix_pipeline_runs_seq", "pipeline_runs", ["seq"])
    op.create_index("ix_pipeline_runs_submitter_seq", "pipeline_runs", ["submitter", "seq"])
    op.create_index("ix_pipeline_runs_state", "pipeline_runs", ["state"])
    op.create_table(
        "pipeline_tasks",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=True),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("log", sa.String(4096), nullable=True),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("backend_id", sa.String(255), nullable=True),
        # The task as rendered (its TaskSpec) and its parents: what a restart runs.
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("parents", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_pipeline_tasks"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.id"],
            name="fk_pipeline_tasks_run_id_pipeline_runs",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("pipeline_tasks")
    op.drop_table("pipeline_runs")
