"""Limits on failed password checks, per user name and per client address.

A password check is argon2 work by design, so wrong passwords sent without limit
take the CPU from everyone else. Failures are counted in fixed windows; a name or
address over its limit is refused (429 with Retry-After) before any check runs, so
a refused attempt costs no argon2 work. Memory is bounded: each table keeps at most
``tracking`` keys and forgets the least recently failed first (an attacker's own
address is the most recent, so spraying names cannot flush it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from strato.caching import LRU
from strato.errors import TooManyRequests
from strato.settings import AuthSettings

# User names are at most 64 characters; longer ones (which no user has) are kept by
# their start, so that a key never costs more than that, whatever a client sends.
_NAME_KEPT = 64


@dataclass
class _Window:
    start: float
    failures: int


class _Counter:
    """Failures per key in fixed windows, at most ``tracking`` keys (the least recently
    failed go first); a window is forgotten once it is over."""

    def __init__(
        self, limit: int, window: float, tracking: int, clock: Callable[[], float]
    ) -> None:
        self.limit = limit
        self.window = window
        # A window ages out ``window`` seconds after its first failure, when it was put.
        self._windows: LRU[str, _Window] = LRU(tracking, ttl=window, clock=clock)

    def __len__(self) -> int:
        return len(self._windows)

    def wait(self, key: str, now: float) -> int:
        """Seconds until ``key`` may try again; 0 if it may now."""
        w = self._windows.peek(key)  # asking is not failing: the order stays
        if w is None or w.failures < self.limit:
            return 0
        return max(1, math.ceil(w.start + self.window - now))

    def fail(self, key: str, now: float) -> None:
        w = self._windows.get(key)
        if w is None:
            w = _Window(now, 0)
            self._windows.put(key, w)
        w.failures += 1


class SignInLimits:
    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic):
        window, tracking = float(settings.failure_window), settings.failure_tracking
        self.users = _Counter(settings.failures_per_user, window, tracking, clock)
        self.addresses = _Counter(settings.failures_per_address, window, tracking, clock)
        self._clock = clock
        # Request threads share the tables; a failure is counted in one step with its read.
        self._lock = threading.Lock()

    def check(self, user: str, address: str | None) -> None:
        """Raise TooManyRequests if ``user`` or ``address`` is over its limit."""
        user = user[:_NAME_KEPT]
        with self._lock:
            now = self._clock()
            by_user = self.users.wait(user, now)
            by_address = self.addresses.wait(address, now) if address else 0
        if by_address:
            raise TooManyRequests(
                f"too many wrong passwords from {address} (limit "
                f"{self.addresses.limit} per {self.addresses.window:g} s); "
                f"try again in {by_address} s",
                retry_after=by_address,
            )
        if by_user:
            raise TooManyRequests(
                f"too many wrong passwords for user {user!r} (limit "
                f"{self.users.limit} per {self.users.window:g} s); try again in {by_user} s",
                retry_after=by_user,
            )

    def failed(self, user: str, address: str | None) -> None:
        user = user[:_NAME_KEPT]
        with self._lock:
            now = self._clock()
            self.users.fail(user, now)
            if address:
                self.addresses.fail(address, now)
