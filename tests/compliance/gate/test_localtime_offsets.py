"""The per-hour cache of UTC offsets agrees with zoneinfo, across every DST change."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from recoup.compliance.gate import localtime
from recoup.compliance.gate.localtime import EPOCH_ORDINAL, ZoneOffsets, zone_offsets

GATE_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Asia/Shanghai",
]
WITHOUT_DST = {"America/Phoenix", "Pacific/Honolulu", "Asia/Shanghai"}
FIRST = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
LAST = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())


def _zoneinfo_offset(tz: ZoneInfo, epoch: int) -> int:
    offset = datetime.fromtimestamp(epoch, tz).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _transitions(tz: ZoneInfo) -> list[int]:
    """Return the first epoch second of every offset change in 2024-2026, found by bisection."""
    found = []
    for hour_start in range(FIRST, LAST, 3600):
        if _zoneinfo_offset(tz, hour_start) != _zoneinfo_offset(tz, hour_start + 3600):
            low, high = hour_start, hour_start + 3600
            while high - low > 1:
                middle = (low + high) // 2
                if _zoneinfo_offset(tz, middle) == _zoneinfo_offset(tz, low):
                    low = middle
                else:
                    high = middle
            found.append(high)
    return found


class TestZoneOffsets:
    @pytest.mark.parametrize("name", GATE_ZONES)
    def test_every_second_around_each_transition(self, name: str) -> None:
        tz = ZoneInfo(name)
        offsets = ZoneOffsets(tz)
        transitions = _transitions(tz)
        if name in WITHOUT_DST:
            assert transitions == []
        else:
            # Two changes a year for three years.
            assert len(transitions) == 6
        for transition in transitions:
            # Every gate zone changes on a UTC hour, so those hours stay cacheable.
            assert transition % 3600 == 0
            for epoch in range(transition - 3 * 3600, transition + 3 * 3600, 1):
                expected = _zoneinfo_offset(tz, epoch)
                assert offsets.at(epoch) == expected, (name, epoch)
            # Asked again, now from the cache.
            for epoch in range(transition - 3 * 3600, transition + 3 * 3600, 7):
                assert offsets.at(epoch) == _zoneinfo_offset(tz, epoch), (name, epoch)

    @pytest.mark.parametrize("name", GATE_ZONES)
    def test_every_hour_of_three_years(self, name: str) -> None:
        tz = ZoneInfo(name)
        offsets = ZoneOffsets(tz)
        rng = random.Random(name)
        for hour_start in range(FIRST, LAST, 3600):
            for epoch in (hour_start, hour_start + rng.randrange(3600), hour_start + 3599):
                assert offsets.at(epoch) == _zoneinfo_offset(tz, epoch), (name, epoch)
        # Every cached hour holds a single offset.
        for hour, offset in offsets.by_hour.items():
            assert _zoneinfo_offset(tz, hour * 3600) == offset
            assert _zoneinfo_offset(tz, hour * 3600 + 3599) == offset

    @pytest.mark.parametrize("name", GATE_ZONES)
    def test_local_day_and_second_match_astimezone(self, name: str) -> None:
        tz = ZoneInfo(name)
        offsets = zone_offsets(tz)
        rng = random.Random(name)
        for _ in range(5000):
            epoch = rng.randrange(FIRST, LAST)
            local_seconds = epoch + offsets.at(epoch)
            local = datetime.fromtimestamp(epoch, UTC).astimezone(tz)
            assert local_seconds // 86400 + EPOCH_ORDINAL == local.toordinal()
            assert local_seconds % 86400 == local.hour * 3600 + local.minute * 60 + local.second

    def test_a_change_off_the_utc_hour_is_never_cached(self) -> None:
        # Lord Howe Island moves from +10:30 to +11:00 at 02:00 local, 15:30 UTC.
        tz = ZoneInfo("Australia/Lord_Howe")
        offsets = ZoneOffsets(tz)
        change = int(datetime(2025, 10, 4, 15, 30, tzinfo=UTC).timestamp())
        for epoch in range(change - 3600, change + 3600):
            assert offsets.at(epoch) == _zoneinfo_offset(tz, epoch), epoch
        assert offsets.at(change - 1) == 10 * 3600 + 1800
        assert offsets.at(change) == 11 * 3600
        assert change // 3600 not in offsets.by_hour
        assert change // 3600 - 1 in offsets.by_hour

    def test_half_hour_zone_without_changes(self) -> None:
        tz = ZoneInfo("Asia/Kolkata")
        offsets = ZoneOffsets(tz)
        epoch = int(datetime(2025, 3, 3, 18, 29, 59, tzinfo=UTC).timestamp())
        assert offsets.at(epoch) == 5 * 3600 + 1800
        local_seconds = epoch + offsets.at(epoch)
        assert date.fromordinal(local_seconds // 86400 + EPOCH_ORDINAL) == date(2025, 3, 3)
        assert local_seconds % 86400 == 23 * 3600 + 59 * 60 + 59
        assert offsets.at(epoch + 1) == 5 * 3600 + 1800
        assert (epoch + 1 + offsets.at(epoch + 1)) % 86400 == 0

    def test_cache_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(localtime, "OFFSET_CACHE_HOURS", 4)
        tz = ZoneInfo("America/New_York")
        offsets = ZoneOffsets(tz)
        start = datetime(2025, 3, 9, tzinfo=UTC)
        for hours in range(24):
            epoch = int((start + timedelta(hours=hours)).timestamp())
            assert offsets.at(epoch) == _zoneinfo_offset(tz, epoch)
            assert len(offsets.by_hour) <= 4

    def test_one_cache_per_zone(self) -> None:
        assert zone_offsets(ZoneInfo("Asia/Shanghai")) is zone_offsets(ZoneInfo("Asia/Shanghai"))
        assert zone_offsets(ZoneInfo("Asia/Shanghai")).tz == ZoneInfo("Asia/Shanghai")
