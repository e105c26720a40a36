"""Wall-clock arithmetic across DST gaps and overlaps, and working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from recoup.compliance.gate.localtime import (
    instant_at_wall,
    local_date_start,
    start_of_next_local_day,
    working_day_calendar,
    zone,
)

NEW_YORK = ZoneInfo("America/New_York")


class TestInstantAtWall:
    def test_ordinary_time(self) -> None:
        assert instant_at_wall(date(2025, 6, 2), time(8), NEW_YORK) == datetime(
            2025, 6, 2, 12, tzinfo=UTC
        )

    def test_gap_returns_the_end_of_the_gap(self) -> None:
        assert instant_at_wall(date(2025, 3, 9), time(2, 30), NEW_YORK) == datetime(
            2025, 3, 9, 7, tzinfo=UTC
        )

    def test_overlap_returns_the_first_occurrence(self) -> None:
        assert instant_at_wall(date(2025, 11, 2), time(1, 30), NEW_YORK) == datetime(
            2025, 11, 2, 5, 30, tzinfo=UTC
        )

    @pytest.mark.parametrize(
        ("name", "day", "expected"),
        [
            ("America/Santiago", date(2025, 9, 7), datetime(2025, 9, 7, 4, tzinfo=UTC)),
            ("America/Havana", date(2025, 3, 9), datetime(2025, 3, 9, 5, tzinfo=UTC)),
            ("Asia/Shanghai", date(2025, 1, 26), datetime(2025, 1, 25, 16, tzinfo=UTC)),
        ],
    )
    def test_midnight_that_does_not_exist(self, name: str, day: date, expected: datetime) -> None:
        assert local_date_start(day, ZoneInfo(name)) == expected

    def test_next_local_day(self) -> None:
        moment = datetime(2025, 3, 3, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
        assert start_of_next_local_day(moment, ZoneInfo("Asia/Shanghai")) == datetime(
            2025, 3, 3, 16, tzinfo=UTC
        )


class TestZones:
    def test_unknown_zone_has_a_useful_message(self) -> None:
        with pytest.raises(ValueError, match="IANA"):
            zone("Mars/Olympus")

    def test_zone_is_cached(self) -> None:
        assert zone("Asia/Shanghai") is zone("Asia/Shanghai")


class TestWorkingDays:
    def test_china_make_up_working_day(self) -> None:
        calendar = working_day_calendar("CN")
        assert calendar.is_working_day(date(2025, 1, 26))
        assert not calendar.is_working_day(date(2025, 1, 25))
        assert calendar.holiday_name(date(2025, 1, 29)) is not None
        assert calendar.holiday_name(date(2025, 1, 26)) is None

    def test_china_weekend_inside_a_break_carries_the_festival(self) -> None:
        calendar = working_day_calendar("CN")
        assert calendar.holiday_name(date(2026, 10, 4)) == "National Day"
        assert "Spring Festival" in str(calendar.holiday_name(date(2026, 2, 21)))
        assert calendar.holiday_name(date(2026, 10, 11)) is None

    def test_us_weekend_next_to_a_holiday_is_no_holiday(self) -> None:
        # Memorial Day 2026 is Monday 25 May; the weekend before it is an ordinary one.
        assert working_day_calendar("US").holiday_name(date(2026, 5, 23)) is None

    def test_us_independence_day(self) -> None:
        assert working_day_calendar("US").holiday_name(date(2025, 7, 4)) == "Independence Day"
