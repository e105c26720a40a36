"""Timezone-aware time: stored in UTC, decided in the debtor's local zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


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


def local_today(zone_name: str, *, now: datetime | None = None) -> date:
    """Return today's date (or ``now``'s) in ``zone_name``."""
    return (now or utcnow()).astimezone(zone(zone_name)).date()


def start_of_day(day: date, zone_name: str) -> datetime:
    """Return the first instant of ``day`` in ``zone_name``, in UTC."""
    return datetime.combine(day, time.min, tzinfo=zone(zone_name)).astimezone(UTC)
