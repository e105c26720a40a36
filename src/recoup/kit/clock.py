"""Timezone-aware time: stored in UTC, decided in the debtor's local zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The years of the moments Recoup takes from outside: wide enough for any loan's history and
# any plan, narrow enough that moving a moment to any time zone never leaves ``datetime``.
FIRST_YEAR = 1900
LAST_YEAR = 2999

# Clocks differ a little between a lender's systems and ours.
CLOCK_SKEW = timedelta(minutes=5)


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """Return a stored datetime as aware UTC (SQLite hands back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name``; raises ``ValueError`` for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)"
        ) from error


def is_valid_zone(name: str) -> bool:
    """Tell whether ``name`` is a known IANA zone."""
    try:
        zone(name)
    except ValueError:
        return False
    return True


def as_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse a naive one."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give a time zone offset")
    return moment.astimezone(UTC)


def supported_moment(moment: datetime) -> datetime:
    """Return an aware ``moment`` within the supported years; raise ``ValueError`` otherwise."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("give a time zone offset, e.g. 2026-01-31T09:00:00+08:00")
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"give a moment between the years {FIRST_YEAR} and {LAST_YEAR}")
    return moment


def supported_day(day: date) -> date:
    """Return ``day`` if within the supported years; raise ``ValueError`` otherwise."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"give a date between the years {FIRST_YEAR} and {LAST_YEAR}")
    return day


def local_today(zone_name: str, *, now: datetime | None = None) -> date:
    """Return today's date (or ``now``'s) in ``zone_name``."""
    return (now or utcnow()).astimezone(zone(zone_name)).date()


def start_of_day(day: date, zone_name: str) -> datetime:
    """Return the first instant of ``day`` in ``zone_name``, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone(zone_name)).astimezone(UTC)
