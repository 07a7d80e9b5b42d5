"""The ``datetime`` parameter of the job list: an RFC 3339 instant, or an interval
``start/end`` with ``..`` (or nothing) for an open end."""

from __future__ import annotations

from datetime import UTC, datetime

from strato.errors import InvalidInput


def _instant(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"datetime: {text!r} is not an RFC 3339 date-time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_interval(text: str) -> tuple[datetime | None, datetime | None]:
    """(since, until) of a ``datetime`` parameter; an instant is both."""
    if "/" not in text:
        when = _instant(text.strip())
        return when, when
    start, _, end = text.partition("/")
    since = None if start.strip() in ("", "..") else _instant(start.strip())
    until = None if end.strip() in ("", "..") else _instant(end.strip())
    if since is None and until is None:
        raise InvalidInput("datetime: an interval needs at least one end")
    if since is not None and until is not None and since > until:
        raise InvalidInput(f"datetime: {text!r} ends before it starts")
    return since, until
