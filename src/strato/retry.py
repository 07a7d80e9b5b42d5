"""The one retry policy of strato: waits that double from a first one up to a cap.

The catalog consumer (a failed batch, an outage of the database or the bus), the node
reconnecting to its bus, the embedded bus polling for messages and a dataset whose
open failed for a passing reason all wait by this rule, each with its own first wait
and cap. Loops that must stop on request (the consumer, the node) sleep the way they
can be woken and only take :meth:`Backoff.delay` from here; plain blocking callers use
:func:`retry_call`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# Past this many doublings the cap has long been reached; it keeps 2**n a small number.
_MOST_DOUBLINGS = 16


@dataclass(frozen=True)
class Backoff:
    """Waits of ``first`` seconds, then ``factor`` times longer each time, at most ``cap``."""

    first: float
    cap: float
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.first < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError(f"a backoff waits forward in time: {self}")

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        steps = min(max(attempt - 1, 0), _MOST_DOUBLINGS)
        return float(min(self.first * self.factor**steps, self.cap))


def retry_call(
    call: Callable[[], T],
    *,
    retries: int,
    transient: tuple[type[Exception], ...],
    backoff: Backoff,
    on_retry: Callable[[int, Exception, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, tried up to ``retries`` more times while it raises one of
    ``transient``; ``on_retry(attempt, error, wait)`` is told before each wait. The last
    error is raised as it is; other errors at once."""
    attempt = 0
    while True:
        try:
            return call()
        except transient as exc:
            attempt += 1
            if attempt > retries:
                raise
            wait = backoff.delay(attempt)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            if wait > 0:
                sleep(wait)
