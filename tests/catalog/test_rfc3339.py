"""RFC 3339 date-times, as events are checked and item columns derived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from strato.catalog.model import rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-01-16T12:00:00Z", datetime(2015, 1, 16, 12, tzinfo=UTC)),
        ("2015-01-16t12:00:00z", datetime(2015, 1, 16, 12, tzinfo=UTC)),
        # More fractional digits than Python keeps: cut to microseconds, not refused.
        ("2015-01-16T12:00:00.123456789Z", datetime(2015, 1, 16, 12, 0, 0, 123456, tzinfo=UTC)),
        (
            "2015-01-16T12:00:00.5+05:30",
            datetime(2015, 1, 16, 12, 0, 0, 500000, tzinfo=timezone(timedelta(hours=5.5))),
        ),
    ],
)
def test_parses_with_its_offset(text: str, expected: datetime) -> None:
    parsed = rfc3339.parse(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == expected.utcoffset()
    utc = rfc3339.parse_utc(text)
    assert utc == expected
    assert utc is not None
    assert utc.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2015-01-16",  # a date
        "2015-01-16T12:00:00",  # no time zone
        "2015-13-16T12:00:00Z",  # no 13th month
        "2015-01-16T12:00:00Z trailing",
        "",
    ],
)
def test_refuses_what_is_not_an_rfc3339_date_time(text: str) -> None:
    assert rfc3339.parse(text) is None
    assert rfc3339.parse_utc(text) is None


def test_a_time_that_has_no_utc_equivalent_is_none_in_utc() -> None:
    # Valid as written, but one hour before year 1 in UTC.
    assert rfc3339.parse("0001-01-01T00:00:00+01:00") is not None
    assert rfc3339.parse_utc("0001-01-01T00:00:00+01:00") is None


def test_long_texts_are_read_but_not_kept() -> None:
    long_fraction = "2015-01-16T12:00:00." + "1" * 100 + "Z"
    assert rfc3339.parse_utc(long_fraction) == datetime(2015, 1, 16, 12, 0, 0, 111111, tzinfo=UTC)
    before = rfc3339._read_utc_kept.cache_info().currsize
    for n in range(50):
        assert rfc3339.parse_utc("x" * (1000 + n)) is None
    assert rfc3339._read_utc_kept.cache_info().currsize == before
