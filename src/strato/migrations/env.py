from __future__ import annotations

from alembic import context

import strato.auth
import strato.catalog.store
import strato.data.datasets.registry  # noqa: F401
from strato.db import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
