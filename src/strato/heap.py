"""The garbage collector and the allocator of a long-running strato process.

CPython's cyclic collector runs a young-generation pass every 700 net allocations and,
now and then, a full pass over every object the process holds. A server holds a large
heap from its imports and start-up (the web app, the ORM's mappers, the codecs) that
will live as long as the process, and a catalog batch allocates hundreds of thousands
of short-lived dicts and rows: under the default settings the collector spent about a
third of an ingest's time walking objects that were never garbage.

glibc's allocator keeps what a program frees for its next allocations, in one arena
per thread that allocated it, and gives it back to the operating system only from the
top of each arena. A server answers from a pool of worker threads whose searches
allocate and free megabytes each (statements, rows, SQLite pages): under 32 clients
a catalog server's resident memory grew by about 50 MB a minute, of which more than
two thirds was free memory glibc kept (measured with bench/soak.py; one
``malloc_trim`` took it from 650 to 400 MB, live memory unchanged). So a settled
process hands free pages back every few seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strato.settings import HeapSettings

# Allocations between young-generation passes; a middle pass every 10 young ones, as
# CPython does.
YOUNG_THRESHOLD = 20_000
# Middle passes between full ones: CPython's 10 would mean one full pass per 2 million
# allocations with the young threshold above. A search builds SQLAlchemy statements, which
# are reference cycles, and the 32 searches in flight during a middle pass reach the old
# generation before they become garbage: there they waited minutes for a full pass while
# the server grew by 40-80 MB a minute (bench/soak.py; one gc.collect() freed 311,000
# such objects). A full pass still runs only once what reached the old generation since
# the last one is a quarter of what lives there (CPython's rule), so its cost stays a
# fraction of the work that made the garbage.
OLD_THRESHOLD = 1
# glibc's mallopt parameters (malloc.h) and the values a server sets at start-up.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Blocks from this size up are mapped on their own and unmapped when freed. glibc starts
# at 128 KiB but raises the threshold to the size of each mapped block freed (up to 32
# MiB), so after a few large responses every block up to megabytes came from the arenas:
# under 32 search clients (bench/soak.py) the arenas' free but resident memory grew by
# ~30 MB a minute, in holes between live blocks that ``malloc_trim`` cannot return.
# Setting the threshold turns that adjustment off.
MMAP_THRESHOLD = 128 * 1024
# Arenas for all threads. glibc makes up to 8 per core, one per thread that contends; a
# server's 40 request threads spread their blocks over 16 arenas on 2 cores, each with
# its own free holes. Two keep the holes where the next allocations reuse them.
ARENA_MAX = 2
# Seconds between two releases of free memory; one costs a few milliseconds.
RELEASE_INTERVAL = 10.0
RELEASER_NAME = "strato-heap-release"

_releaser: threading.Thread | None = None
_releaser_lock = threading.Lock()


def _glibc(function: str) -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_TRIM = _glibc("malloc_trim")
_MALLOPT = _glibc("mallopt")


def can_release() -> bool:
    """Whether this process's allocator can give free memory back on request (glibc)."""
    return _TRIM is not None


def release() -> None:
    """Give the memory the allocator keeps free back to the operating system, from
    every arena (``malloc_trim(0)``); live memory is not touched."""
    if _TRIM is not None:
        _TRIM(0)


def limit_allocator() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` and its arenas at
    :data:`ARENA_MAX` (before the request threads start: arenas already made stay);
    True when the allocator took both, False where it is not glibc's."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        _MALLOPT(_M_ARENA_MAX, ARENA_MAX)
    )


def start_releasing(interval: float = RELEASE_INTERVAL) -> None:
    """Call :func:`release` every ``interval`` seconds from a daemon thread (once per
    process; later calls do nothing)."""
    global _releaser
    if _TRIM is None:
        return
    with _releaser_lock:
        if _releaser is not None and _releaser.is_alive():
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                release()

        _releaser = threading.Thread(target=run, name=RELEASER_NAME, daemon=True)
        _releaser.start()


def settle(settings: HeapSettings) -> None:
    """Call once start-up is done: what exists now is kept out of later collections
    (``gc.freeze``), young passes run less often and full ones more often, and free
    memory goes back to the operating system every :data:`RELEASE_INTERVAL` seconds,
    from arenas kept few and free of large blocks (:func:`limit_allocator`) when
    ``settings.limit_allocator`` says so."""
    if settings.limit_allocator:
        limit_allocator()
    gc.collect()
    gc.freeze()
    # Once more, now that the old generation is empty: CPython runs a full pass only when
    # the objects promoted since the last one exceed a quarter of what that pass left, and
    # the pass before freeze left the whole start-up heap. Without this, a server that
    # started with millions of objects would wait for a quarter of them in new garbage.
    gc.collect()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, OLD_THRESHOLD)
    start_releasing()
