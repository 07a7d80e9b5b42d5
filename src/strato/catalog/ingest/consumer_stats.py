"""What a catalog consumer counts, and how it says what went wrong (one line, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

# The longest error text a consumer reports or keeps.
DETAIL_MAX = 500


@dataclass
class Counts:
    messages: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    invalid: int = 0
    failed: int = 0

    def add(self, other: Counts) -> None:
        self.messages += other.messages
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.invalid += other.invalid
        self.failed += other.failed


@dataclass
class ConsumerStats:
    """What the consumer did since it started; ``rejected`` includes ``invalid``."""

    messages: int = 0
    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    invalid: int = 0
    failed: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    outage: str | None = None
    last_batch_at: datetime | None = None


def describe(exc: BaseException) -> str:
    """One line saying what went wrong: the driver's message, never SQL or a traceback."""
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
    args: tuple[Any, ...] = tuple(getattr(cause, "args", ()))
    # PyMySQL's errors are (code, message) pairs.
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        message = args[1]
    else:
        message = str(cause)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = lines[0] if lines else type(cause).__name__
    return first[:DETAIL_MAX]
