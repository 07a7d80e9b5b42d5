"""The pipelines capability's schema history: runs and their tasks (version table
alembic_version_pipelines)."""

# The former single chain never had pipelines.
LEGACY: dict[str, str] = {}
