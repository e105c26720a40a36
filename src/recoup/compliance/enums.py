"""Words of the contact gate that belong to compliance alone: holiday modes.

Channels, parties and outcome codes are the contact domain's (``recoup.contact``).
"""

from __future__ import annotations

from enum import StrEnum


class HolidaySuppression(StrEnum):
    """Which days an institution keeps free of collection contact."""

    OFF = "off"
    PUBLIC_HOLIDAYS = "public_holidays"
    NON_WORKING_DAYS = "non_working_days"
