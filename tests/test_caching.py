"""The one bounded cache (strato.caching.LRU)."""

from __future__ import annotations

import threading

import pytest

from strato.caching import LRU, Kept


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_goes_first_and_is_handed_to_on_evict() -> None:
    evicted: list[tuple[str, int]] = []
    cache: LRU[str, int] = LRU(2, on_evict=lambda k, v: evicted.append((k, v)))
    assert cache.put("a", 1) is None
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent: b goes first
    cache.put("c", 3)
    assert evicted == [("b", 2)]
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)


def test_peek_leaves_the_order_alone() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    cache.put("c", 3)
    assert "a" not in cache
    assert "b" in cache


def test_what_the_caller_replaces_pops_or_clears_is_returned_not_evicted() -> None:
    evicted: list[int] = []
    cache: LRU[str, int] = LRU(4, on_evict=lambda _, v: evicted.append(v))
    cache.put("a", 1)
    assert cache.put("a", 2) == 1
    assert cache.pop("a") == 2
    assert cache.pop("a") is None
    cache.put("b", 3)
    cache.put("c", 4)
    assert cache.values() == [3, 4]
    assert cache.clear() == [3, 4]
    assert len(cache) == 0
    assert evicted == []


def test_entries_age_out_after_ttl_from_when_they_were_put() -> None:
    clock = Clock()
    evicted: list[str] = []
    cache: LRU[str, int] = LRU(8, ttl=10, clock=clock, on_evict=lambda k, _: evicted.append(k))
    cache.put("a", 1)
    clock.now = 9.9
    assert cache.get("a") == 1  # a use does not make it younger
    clock.now = 10.0
    assert cache.get("a") is None
    assert evicted == ["a"]
    assert len(cache) == 0
    cache.put("b", 2)
    clock.now = 25
    assert cache.pop("b") is None
    assert cache.values() == []


def test_a_zero_ttl_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(8, ttl=0)
    cache.put("a", 1)
    assert cache.get("a") is None


def test_get_or_make_makes_only_what_is_missing() -> None:
    made: list[str] = []
    cache: LRU[str, str] = LRU(8)

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    assert cache.get_or_make("a", lambda: make("a")) == "A"
    assert cache.get_or_make("a", lambda: make("a")) == "A"
    assert made == ["a"]


def test_setdefault_keeps_the_first_value_given_until_it_goes() -> None:
    clock = Clock()
    evicted: list[str] = []
    cache: LRU[str, object] = LRU(2, ttl=5, clock=clock, on_evict=lambda k, _: evicted.append(k))
    first, second = object(), object()
    assert cache.setdefault("a", first) is first
    assert cache.setdefault("a", second) is first
    cache.put("b", 2)
    assert cache.setdefault("a", second) is first  # used: b is the least recent now
    cache.put("c", 3)
    assert evicted == ["b"]
    clock.now = 5
    assert cache.setdefault("a", second) is second  # the first aged out
    assert evicted == ["b", "a"]


def test_threads_asking_setdefault_at_once_get_one_value() -> None:
    cache: LRU[str, object] = LRU(4)
    got: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        got.append(cache.setdefault("gate", object()))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in got}) == 1


def test_kept_reads_once_per_ttl_and_again_when_refreshed() -> None:
    clock = Clock()
    reads: list[float] = []

    def read() -> int:
        reads.append(clock.now)
        return len(reads)

    kept = Kept(read, 30, clock=clock)
    assert kept.get() == 1
    clock.now = 29.9
    assert kept.get() == 1
    clock.now = 30
    assert kept.get() == 2
    # Refreshing reads again even when the clock has not moved.
    assert kept.get(refresh=True) == 3
    assert reads == [0, 30, 30]
    with pytest.raises(ValueError, match="ttl"):
        Kept(read, -1)


def test_a_refresh_waiting_for_a_read_begun_before_it_asked_reads_again() -> None:
    reading, release = threading.Event(), threading.Event()
    values = iter(["old", "new"])

    def read() -> str:
        value = next(values)
        if value == "old":
            reading.set()
            release.wait(10)
        return value

    kept: Kept[str] = Kept(read, 30)
    first = threading.Thread(target=kept.get)
    first.start()
    reading.wait(10)
    got: list[str] = []
    second = threading.Thread(target=lambda: got.append(kept.get(refresh=True)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert got == ["new"]


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LRU(0)
    with pytest.raises(ValueError, match="ttl"):
        LRU(1, ttl=-1)


def test_threads_sharing_it_never_exceed_the_bound_nor_lose_an_eviction() -> None:
    evicted: list[int] = []
    lock = threading.Lock()

    def on_evict(_: int, value: int) -> None:
        with lock:
            evicted.append(value)

    cache: LRU[int, int] = LRU(50, on_evict=on_evict)

    def work(start: int) -> None:
        for i in range(start, start + 2_000):
            cache.put(i, i)
            cache.get(i - 3)
            assert len(cache) <= 50

    threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
    assert sorted(evicted + cache.values()) == sorted(
        i for n in range(4) for i in range(n * 10_000, n * 10_000 + 2_000)
    )
