"""What a server's SQLite connections may hold in memory, all of them together.

Each SQLite connection keeps its own page cache, and a server under 32 concurrent
clients opens as many connections as its pool allows, closing the overflow ones as
load comes and goes. With 64 MiB per connection a catalog server grew from 300 MB to
2.4 GB in 90 s of searches (bench/soak.py), and glibc kept what the closed connections
freed.
"""

from __future__ import annotations

from pathlib import Path

from strato.db import create_engine

# What all of one engine's SQLite page caches may hold at once.
BUDGET = 256 * 2**20


def test_sqlite_page_caches_of_a_full_pool_stay_within_budget(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        with engine.connect() as conn:
            size = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
            page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        # Negative: KiB; positive: pages.
        per_connection = -size * 1024 if size < 0 else size * page
        pool = engine.pool
        connections = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
        assert per_connection * connections <= BUDGET, (
            f"{connections} connections x {per_connection / 2**20:.0f} MiB of page cache"
        )
    finally:
        engine.dispose()
