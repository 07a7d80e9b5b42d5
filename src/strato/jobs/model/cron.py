"""Cron expressions of schedules: five fields and a time zone, parsed and stepped by
cronsim (Debian cron's rules, DST included).

Across a daylight saving change a schedule at a fixed wall-clock time behaves as Debian
cron does: a time that does not exist (02:30 when clocks jump from 02:00 to 03:00) runs
at the first minute after the jump, and a time that happens twice runs once (the first).
Expressions with ``*`` in the minute or hour field run on every matching minute of
either pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from strato.errors import InvalidInput

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_TEXT = " ".join(FIELDS)
# cronsim names the six fields of its own syntax (seconds first); ours are the last five.
_CRONSIM_NAMES = {f"Bad {name}": name for name in FIELDS}


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` ("UTC", "Europe/Berlin")."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"timezone: {name!r} is not a time zone name (like 'UTC' or 'Europe/Berlin')"
        ) from None


@dataclass(frozen=True)
class Cron:
    expression: str
    timezone: str = "UTC"

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        """A checked expression, or InvalidInput naming the field that is wrong."""
        fields = expression.split()
        if len(fields) != len(FIELDS):
            raise InvalidInput(
                f"cron: {expression!r} has {len(fields)} fields; five are needed: {_FIELDS_TEXT}"
            )
        cron = cls(" ".join(fields), timezone)
        tz = zone(timezone)
        try:
            CronSim(cron.expression, datetime(2000, 1, 1, tzinfo=tz))
        except CronSimError as exc:
            field = _CRONSIM_NAMES.get(str(exc))
            what = f"the {field} field {fields[FIELDS.index(field)]!r}" if field else str(exc)
            raise InvalidInput(
                f"cron: {what} of {expression!r} is not valid ({_FIELDS_TEXT})"
            ) from None
        if cron.next_after(datetime.now(UTC)) is None:
            raise InvalidInput(f"cron: {expression!r} never matches a date")
        return cron

    def next_after(self, moment: datetime) -> datetime | None:
        """The first time strictly after ``moment`` (aware) that the expression matches,
        in UTC; None if it matches none in the next 50 years."""
        if moment.tzinfo is None:
            raise ValueError("a naive datetime given to a cron expression")
        local = moment.astimezone(zone(self.timezone))
        times = CronSim(self.expression, local)
        # cronsim steps a fixed wall-clock time on the naive local clock: in the second
        # pass of a repeated hour it may answer the first pass's time, already past.
        for found in times:
            at = found.astimezone(UTC)
            if at > moment:
                return at
        return None
