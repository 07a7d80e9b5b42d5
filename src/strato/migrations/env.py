"""The alembic environment of every schema history: the core's and each capability's.

Which history runs, and in which version table it is recorded, the runner says
(strato.db.migrate): the histories are independent of each other.
"""

from __future__ import annotations

from alembic import context

from strato.db import dialect_of

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        # Only for `alembic revision --autogenerate` during development.
        target_metadata=config.attributes.get("metadata"),
        version_table=config.attributes.get("version_table", "alembic_version"),
        # Engines without ALTER COLUMN (SQLite) rebuild a table to alter it.
        render_as_batch=dialect_of(connection).alters_in_batches,
    )
    with context.begin_transaction():
        context.run_migrations()
