"""The jobs capability's schema history: jobs (version table alembic_version_jobs)."""

# The former single chain never had jobs.
LEGACY: dict[str, str] = {}
