"""Local dates and day starts in an institution's or debtor's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

from recoup.kit.clock import local_today, start_of_day


def test_local_today_follows_the_zone_across_midnight() -> None:
    moment = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # 00:30 on the 29th in Shanghai
    assert local_today("Asia/Shanghai", now=moment) == date(2026, 11, 29)
    assert local_today("America/New_York", now=moment) == date(2026, 11, 28)


def test_start_of_day_is_local_midnight_in_utc() -> None:
    assert start_of_day(date(2026, 11, 29), "Asia/Shanghai") == datetime(
        2026, 11, 28, 16, 0, tzinfo=UTC
    )
