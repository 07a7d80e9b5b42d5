"""The garbage collector of a long-running strato process.

CPython's cyclic collector runs a young-generation pass every 700 net allocations and,
now and then, a full pass over every object the process holds. A server holds a large
heap from its imports and start-up (the web app, the ORM's mappers, the codecs) that
will live as long as the process, and a catalog batch allocates hundreds of thousands
of short-lived dicts and rows: under the default settings the collector spent about a
third of an ingest's time walking objects that were never garbage.
"""

from __future__ import annotations

import gc

# Allocations between young-generation passes; the older thresholds are CPython's.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Call once start-up is done: what exists now is kept out of later collections
    (``gc.freeze``), and young passes run less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
