"""The one bounded cache of strato: least recently used out first, optionally aged out.

Every cache of the server (opened datasets, compiled statements, facet counts, computed
diagnostics, sign-in failure windows, ...) is this class, so each is bounded, safe to
share between request threads, and tested once. ``functools.lru_cache`` stays right for
pure functions; this is for caches with their own keys, lifetimes or clean-up.

Not a library's: ``cachetools`` (the usual one) is neither thread-safe nor able to say
what it dropped outside its own bookkeeping, so it would need this wrapper anyway.

What is dropped to make room, or found too old, is handed to ``on_evict`` after the
lock is released (closing an opened dataset takes locks of its own and must not hold
up readers). What a caller replaces (:meth:`LRU.put`), removes (:meth:`LRU.pop`) or
clears (:meth:`LRU.clear`) is returned to it instead, to deal with as it knows.

:class:`Kept` is the one-value kind: a value read again when older than its age limit,
or when a caller finds it out of date (a name it was asked for is not in it yet).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``maxsize`` entries; with ``ttl``, an entry older than ``ttl`` seconds
    (since it was put) is as good as absent. Values are never None: None means absent."""

    def __init__(
        self,
        maxsize: int,
        *,
        ttl: float | None = None,
        on_evict: Callable[[K, V], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        if ttl is not None and ttl < 0:
            raise ValueError(f"ttl must not be negative, not {ttl}")
        self.maxsize = maxsize
        self.ttl = ttl
        self._on_evict = on_evict
        self._clock = clock
        # key -> (value, when it was put); oldest use first.
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return self.peek(key) is not None  # type: ignore[arg-type]

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or None."""
        return self._find(key, touch=True)

    def peek(self, key: K) -> V | None:
        """The value of ``key`` without making it recently used, or None."""
        return self._find(key, touch=False)

    def put(self, key: K, value: V) -> V | None:
        """Keep ``value`` as the most recently used; returns the value it replaced."""
        with self._lock:
            previous = self._entries.pop(key, None)
            self._entries[key] = (value, self._clock())
            dropped = []
            while len(self._entries) > self.maxsize:
                dropped.append(self._entries.popitem(last=False))
        self._evicted(dropped)
        return None if previous is None else previous[0]

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value of ``key``, made (outside the lock) and kept if there is none.

        Two threads missing the same key at once both make it; the later one is kept.
        """
        found = self.get(key)
        if found is not None:
            return found
        value = make()
        self.put(key, value)
        return value

    def setdefault(self, key: K, value: V) -> V:
        """The value of ``key``, or ``value`` kept as it if there is none, in one step:
        threads asking at once all get the same one (a per-key lock, say)."""
        dropped = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not self._expired(entry[1]):
                self._entries.move_to_end(key)
                return entry[0]
            self._entries.pop(key, None)
            self._entries[key] = (value, self._clock())
            while len(self._entries) > self.maxsize:
                dropped.append(self._entries.popitem(last=False))
        if entry is not None:
            dropped.append((key, entry))
        self._evicted(dropped)
        return value

    def pop(self, key: K) -> V | None:
        """Remove ``key``; returns its value (if it had not aged out), or None."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None or self._expired(entry[1]):
            return None
        return entry[0]

    def remove_if(self, unwanted: Callable[[V], bool]) -> int:
        """Remove every entry whose value is ``unwanted``; returns how many went."""
        with self._lock:
            gone = [(k, e) for k, e in self._entries.items() if unwanted(e[0])]
            for key, _ in gone:
                del self._entries[key]
        self._evicted(gone)
        return len(gone)

    def clear(self) -> list[V]:
        """Remove everything; returns the values that were kept."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        return [value for value, _ in entries]

    def values(self) -> list[V]:
        """The values, least recently used first (aged ones left out)."""
        with self._lock:
            entries = list(self._entries.values())
        return [value for value, at in entries if not self._expired(at)]

    def _find(self, key: K, *, touch: bool) -> V | None:
        dropped = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._expired(entry[1]):
                del self._entries[key]
                dropped.append((key, entry))
                found = None
            else:
                if touch:
                    self._entries.move_to_end(key)
                found = entry[0]
        self._evicted(dropped)
        return found

    def _expired(self, put_at: float) -> bool:
        return self.ttl is not None and self._clock() - put_at >= self.ttl

    def _evicted(self, dropped: list[tuple[K, tuple[V, float]]]) -> None:
        if self._on_evict is not None:
            for key, (value, _) in dropped:
                self._on_evict(key, value)


class Kept(Generic[V]):
    """One value, made by ``read``, read again when it is ``ttl`` seconds old or when
    :meth:`get` is asked to refresh it.

    Readers of a fresh value take no lock (it is one tuple, swapped whole). Reads are made
    one at a time; a thread that waited for another's read takes its value instead of
    reading again when that is as good: fresh, or (to refresh) begun after it asked.
    """

    def __init__(
        self, read: Callable[[], V], ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must not be negative, not {ttl}")
        self.ttl = ttl
        self._read = read
        self._clock = clock
        # (value, when its read began), or None before the first read.
        self._kept: tuple[V, float] | None = None
        # Reads begun so far: a count, not a time, so a coarse clock cannot make a read
        # begun before a refresh was asked for look like one begun after.
        self._reads = 0
        self._lock = threading.Lock()

    def get(self, *, refresh: bool = False) -> V:
        """The value; with ``refresh``, one read after this call began."""
        reads = self._reads
        kept = self._kept
        if kept is not None and not refresh and self._clock() - kept[1] < self.ttl:
            return kept[0]
        with self._lock:
            kept = self._kept
            if kept is not None and (
                self._reads > reads if refresh else self._clock() - kept[1] < self.ttl
            ):
                return kept[0]
            self._reads += 1
            began = self._clock()
            value = self._read()
            self._kept = (value, began)
        return value
