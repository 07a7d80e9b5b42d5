"""Rates from successive byte counter readings, per session and listener.

A data server reports counters (bytes so far), not rates: a rate is the difference
between two readings over the time between them. Readings come whenever someone looks
(a page polling, a script), so readings closer together than ``MIN_GAP`` keep the rate
already found: two viewers polling at once do not divide bytes by a few milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

MIN_GAP = 0.5  # seconds; below this the previous rate is kept


@dataclass(frozen=True)
class _Reading:
    at: float  # monotonic seconds
    bytes_in: int
    bytes_out: int
    rate_in: float | None
    rate_out: float | None


class Rates:
    def __init__(self, min_gap: float = MIN_GAP) -> None:
        self.min_gap = min_gap
        self._last: dict[tuple[str, str], _Reading] = {}

    def read(
        self, uid: str, listener: str, bytes_in: int, bytes_out: int, now: float
    ) -> tuple[float | None, float | None]:
        """Bytes per second in and out since the previous reading of this listener; None
        before there are two readings (or after the counters went back, as a restarted
        forwarder's do)."""
        key = (uid, listener)
        last = self._last.get(key)
        if last is None or bytes_in < last.bytes_in or bytes_out < last.bytes_out:
            self._last[key] = _Reading(now, bytes_in, bytes_out, None, None)
            return None, None
        gap = now - last.at
        if gap < self.min_gap:
            return last.rate_in, last.rate_out
        reading = _Reading(
            now,
            bytes_in,
            bytes_out,
            (bytes_in - last.bytes_in) / gap,
            (bytes_out - last.bytes_out) / gap,
        )
        self._last[key] = reading
        return reading.rate_in, reading.rate_out

    def keep(self, uids: set[str]) -> None:
        """Forget the readings of sessions that are gone."""
        for key in [k for k in self._last if k[0] not in uids]:
            del self._last[key]

    def forget(self, uid: str) -> None:
        self.keep({u for u, _ in self._last if u != uid})
