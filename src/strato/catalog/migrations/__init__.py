"""The catalog capability's schema history: collections, items, facets, applied events
(version table alembic_version_catalog)."""

# What of this history the former single chain (0001..0007, table alembic_version) had
# made, by its revision; see strato.migrations.
LEGACY = {
    "0003": "catalog_0001",
    "0004": "catalog_0002",
    "0005": "catalog_0003",
    "0006": "catalog_0003",
    "0007": "catalog_0003",
}
