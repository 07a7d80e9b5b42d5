"""The data capability's schema history: registered datasets (version table
alembic_version_data)."""

# What of this history the former single chain (0001..0007, table alembic_version) had
# made, by its revision; see strato.migrations.
LEGACY = {
    "0002": "data_0001",
    "0003": "data_0001",
    "0004": "data_0001",
    "0005": "data_0001",
    "0006": "data_0001",
    "0007": "data_0002",
}
