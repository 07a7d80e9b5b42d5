"""The alembic environment of every schema history: the core's and each capability's.

Which history runs, and in which version table it is recorded, the runner says
(strato.db.migrate): the histories are independent of each other.
"""

from __future__ import annotations

from alembic import context

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        # Only for `alembic revision --autogenerate` during development.
        target_metadata=config.attributes.get("metadata"),
        version_table=config.attributes.get("version_table", "alembic_version"),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
