"""Local wall-clock arithmetic for compliance decisions: zones, DST gaps, working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from recoup.kit.clock import zone

__all__ = [
    "EPOCH_ORDINAL",
    "ONE_SECOND",
    "WorkingDayCalendar",
    "ZoneOffsets",
    "instant_at_wall",
    "local_date_start",
    "start_of_next_local_day",
    "working_day_calendar",
    "zone",
    "zone_offsets",
]

ONE_SECOND = timedelta(seconds=1)
# Countries whose government publishes each holiday as a whole break (放假安排): the weekend
# days inside it are part of the holiday, though the holiday package lists only the
# statutory and substituted days. Elsewhere a weekend next to a holiday is just a weekend.
BREAK_COUNTRIES = frozenset({"CN"})
# The longest official break (Spring Festival, National Day) is nine days.
LONGEST_BREAK_DAYS = 10
# How the holiday package names a weekday given off in exchange for a weekend working day.
SUBSTITUTED_DAY_OFF = "Day off"
# The proleptic ordinal of 1970-01-01: local day ordinal = (epoch seconds + offset) // 86400 + this.
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Hours of offsets one zone keeps before starting afresh (a year is 8,760 hours).
OFFSET_CACHE_HOURS = 1 << 17


@lru_cache(maxsize=65536)
def instant_at_wall(local_date: date, wall: time, tz: ZoneInfo) -> datetime:
    """Return the earliest instant (UTC) whose local wall time in tz is at or after the wall time.

    For an ambiguous wall time (DST overlap) this is its first occurrence; for a wall time
    skipped by a DST gap it is the end of the gap.
    """
    naive = datetime.combine(local_date, wall)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        return min(first, second)
    # A gap: every instant before the transition reads earlier than the wall time.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > ONE_SECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


class ZoneOffsets:
    """One zone's UTC offsets in seconds, cached per UTC hour that holds a single offset.

    Converting an instant with ``astimezone`` costs more than the rest of a decision's
    per-zone work; an offset looked up by the instant's UTC hour gives the local day and
    second with integer arithmetic. An hour is cached only when its first and last second
    have the same offset, so an hour with a transition inside it (a zone whose changes fall
    off the UTC hour, such as Australia/Lord_Howe's half-hour shift) is always computed exactly.
    """

    __slots__ = ("by_hour", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.by_hour: dict[int, int] = {}

    def at(self, epoch: int) -> int:
        """Return the zone's UTC offset in seconds at an instant given in whole epoch seconds."""
        hour = epoch // 3600
        offset = self.by_hour.get(hour)
        if offset is not None:
            return offset
        first = self.exact(hour * 3600)
        if first == self.exact(hour * 3600 + 3599):
            if len(self.by_hour) >= OFFSET_CACHE_HOURS:
                self.by_hour.clear()
            self.by_hour[hour] = first
            return first
        return self.exact(epoch)

    def exact(self, epoch: int) -> int:
        """Return the zone's UTC offset in seconds at an instant, without the cache."""
        offset = datetime.fromtimestamp(epoch, self.tz).utcoffset()
        assert offset is not None  # a ZoneInfo always has an offset
        return offset.days * 86400 + offset.seconds


@cache
def zone_offsets(tz: ZoneInfo) -> ZoneOffsets:
    """Return the shared offset cache of a zone."""
    return ZoneOffsets(tz)


def start_of_next_local_day(instant: datetime, tz: ZoneInfo) -> datetime:
    """Return the first instant of the local day after the one containing instant."""
    local_date = instant.astimezone(tz).date()
    return instant_at_wall(local_date + timedelta(days=1), time(0, 0), tz)


def local_date_start(local_date: date, tz: ZoneInfo) -> datetime:
    """Return the first instant (UTC) of a local date."""
    return instant_at_wall(local_date, time(0, 0), tz)


class WorkingDayCalendar:
    """Public holidays and working days of one country, cached per year."""

    def __init__(self, country: str) -> None:
        self.country = country
        self._years: dict[int, Any] = {}

    def _calendar(self, year: int) -> Any:
        calendar = self._years.get(year)
        if calendar is None:
            calendar = holidays.country_holidays(self.country, years=year)
            self._years[year] = calendar
        return calendar

    def holiday_name(self, day: date) -> str | None:
        """Return the name of the public holiday on day, or None.

        In a country with official breaks, a day off inside a break (a weekend day within
        National Day) belongs to the holiday too and carries its name.
        """
        name = self._listed(day)
        if name is not None or self.country not in BREAK_COUNTRIES:
            return name
        if self.is_working_day(day):
            return None
        # A break is an unbroken run of days off; it is a holiday when a listed day is in it,
        # and it is named after its festival rather than after a substituted day off.
        names: list[str] = []
        for step in (timedelta(days=-1), timedelta(days=1)):
            other = day + step
            for _ in range(LONGEST_BREAK_DAYS):
                if self.is_working_day(other):
                    break
                listed = self._listed(other)
                if listed is not None:
                    names.append(listed)
                other += step
        festivals = [name for name in names if not name.startswith(SUBSTITUTED_DAY_OFF)]
        chosen = festivals or names
        return chosen[0] if chosen else None

    def _listed(self, day: date) -> str | None:
        name = self._calendar(day.year).get(day)
        return None if name is None else str(name)

    def is_working_day(self, day: date) -> bool:
        """Tell whether day is a working day, make-up working days (调休) included."""
        return bool(self._calendar(day.year).is_working_day(day))


@cache
def working_day_calendar(country: str) -> WorkingDayCalendar:
    """Return the shared calendar of a country."""
    return WorkingDayCalendar(country)
