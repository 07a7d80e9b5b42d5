"""Increasing microsecond stamps for rows listed newest first: the order of two rows made
in the same second is still the order they were made in (per process)."""

from __future__ import annotations

import threading
import time


class Sequencer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last
