"""The collector settings of long-running processes (strato.heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from strato import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.mark.usefixtures("restored_gc")
def test_settle_keeps_the_start_up_heap_out_of_collections_and_still_frees_cycles() -> None:
    heap.settle()
    # What lived at start-up is frozen: no collection walks it again.
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD

    # Garbage made after start-up is still collected: a reference cycle goes.
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None
