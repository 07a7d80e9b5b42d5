"""The one retry policy (strato.retry)."""

from __future__ import annotations

import pytest

from strato.retry import Backoff, retry_call


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(0.2, 30)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert backoff.delay(9) == 30
    assert backoff.delay(10_000) == 30  # no overflow however long it goes on
    assert Backoff(0, 0).delay(3) == 0


def test_a_backoff_that_goes_back_in_time_is_refused() -> None:
    for first, cap, factor in [(-1, 1, 2), (1, -1, 2), (1, 2, 0.5)]:
        with pytest.raises(ValueError, match="forward"):
            Backoff(first, cap, factor)


def test_transient_errors_are_retried_with_the_waits_of_the_policy() -> None:
    failures = [OSError("busy"), OSError("still busy")]
    slept: list[float] = []
    told: list[tuple[int, str, float]] = []

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    result = retry_call(
        call,
        retries=3,
        transient=(OSError,),
        backoff=Backoff(0.5, 30),
        on_retry=lambda n, exc, wait: told.append((n, str(exc), wait)),
        sleep=slept.append,
    )
    assert result == "done"
    assert slept == [0.5, 1.0]
    assert told == [(1, "busy", 0.5), (2, "still busy", 1.0)]


def test_the_last_transient_error_and_any_other_error_are_raised_as_they_are() -> None:
    calls = 0

    def always() -> None:
        nonlocal calls
        calls += 1
        raise OSError(f"try {calls}")

    with pytest.raises(OSError, match="try 2"):
        retry_call(always, retries=1, transient=(OSError,), backoff=Backoff(0, 0))

    def bad() -> None:
        raise KeyError("not transient")

    slept: list[float] = []
    with pytest.raises(KeyError):
        retry_call(bad, retries=5, transient=(OSError,), backoff=Backoff(1, 1), sleep=slept.append)
    assert slept == []
