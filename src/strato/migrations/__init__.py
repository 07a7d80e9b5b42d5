"""The core's schema history (users, tokens), and the alembic environment every
history runs in (``env.py``); each capability keeps its own history next to its code."""

# Before each capability had its own history, one chain 0001..0007 in the table
# alembic_version held every table. What of this history that chain had made, by its
# revision: a database it made is stamped with that and upgraded from there.
LEGACY = {
    "0001": "core_0001",
    "0002": "core_0001",
    "0003": "core_0001",
    "0004": "core_0001",
    "0005": "core_0001",
    "0006": "core_0002",
    "0007": "core_0002",
}
