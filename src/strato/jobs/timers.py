"""One thread that calls functions when their time comes: time limits, retries after a
back-off, the grace of a cancelled job. A heap, not a thread per timer: every running job
has a deadline, and a drain of no-op jobs sets and cancels thousands a second."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timer:
    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        # Left in the heap and skipped when due: cheaper than taking it out.
        self.cancelled = True


class Timers:
    def __init__(self, name: str = "strato-job-timers") -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def after(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + max(delay, 0.0), fn)
        with self._cond:
            heapq.heappush(self._heap, (timer.when, next(self._count), timer))
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                        continue
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._closed:
                    return
                timer = heapq.heappop(self._heap)[2]
            try:
                timer.fn()
            except Exception:
                log.exception("a job timer failed")
