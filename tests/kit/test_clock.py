"""Local dates and day starts in an institution's or debtor's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from recoup.kit.clock import FIRST_YEAR, LAST_YEAR, local_today, start_of_day, supported_moment


def test_local_today_follows_the_zone_across_midnight() -> None:
    moment = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # 00:30 on the 29th in Shanghai
    assert local_today("Asia/Shanghai", now=moment) == date(2026, 11, 29)
    assert local_today("America/New_York", now=moment) == date(2026, 11, 28)


def test_start_of_day_is_local_midnight_in_utc() -> None:
    assert start_of_day(date(2026, 11, 29), "Asia/Shanghai") == datetime(
        2026, 11, 28, 16, 0, tzinfo=UTC
    )


class TestSupportedMoment:
    @pytest.mark.parametrize(
        "moment",
        [
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=14))),
            datetime(1899, 12, 31, 23, 0, tzinfo=UTC),
            datetime(3000, 1, 1, tzinfo=UTC),
        ],
    )
    def test_refuses_moments_outside_the_supported_years(self, moment: datetime) -> None:
        with pytest.raises(ValueError, match="between the years"):
            supported_moment(moment)

    def test_refuses_a_naive_moment(self) -> None:
        with pytest.raises(ValueError, match="offset"):
            supported_moment(datetime(2026, 1, 1))

    def test_any_supported_moment_converts_to_any_zone(self) -> None:
        for offset in (-14, 14):
            for edge in (datetime(FIRST_YEAR, 1, 1), datetime(LAST_YEAR, 12, 31, 23, 59, 59)):
                moment = supported_moment(edge.replace(tzinfo=timezone(timedelta(hours=offset))))
                assert moment.astimezone(UTC).tzinfo is UTC
                assert local_today("Pacific/Kiritimati", now=moment)
