"""What a server keeps per statement shape, bounded and light (bench/soak.py).

Searches come in more shapes than any cache holds, so the caches of compiled statements
churn under load; what each entry holds is allocated among request garbage and pins the
memory around it. Under 32 clients of mostly new search shapes a server with SQLAlchemy's
default cache (500 entries, pruned at 750) and a row class per cached shape grew by
~25 MB a minute after warm-up.
"""

from __future__ import annotations

from pathlib import Path

from strato.catalog.search import fast_statements
from strato.db import create_engine
from strato.db.dialects.base import QUERY_CACHE_SIZE

# Compiled statements one engine may keep, and shapes the fast path may keep.
MOST_STATEMENTS = 128


def test_an_engine_keeps_few_compiled_statements(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'catalog.db'}", "postgresql://postgres@127.0.0.1/x"):
        engine = create_engine(url)  # no connection is made
        try:
            cache = engine._compiled_cache
            assert cache is not None
            assert cache.capacity <= MOST_STATEMENTS, url
            assert cache.capacity == QUERY_CACHE_SIZE
        finally:
            engine.dispose()


def test_the_fast_path_keeps_few_shapes_and_shares_their_row_classes() -> None:
    assert fast_statements.MAX_SHAPES <= MOST_STATEMENTS
    # Shapes with the same columns (every page statement selects one of a few lists)
    # share one row class: a class per shape was most of an entry, and its garbage.
    first = fast_statements._row_class(("pk", "id", "content"))
    assert fast_statements._row_class(("pk", "id", "content")) is first
    assert first(1, "a", "{}").id == "a"
