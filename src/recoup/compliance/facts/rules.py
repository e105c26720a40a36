"""Compliance facts as people state them: validation dates, inconvenient times and places."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from recoup.compliance.kinds import RuleKind
from recoup.compliance.rulepack import RulePack


class InconvenientPlace(StrEnum):
    """A place the debtor said is inconvenient to be contacted at (US-INCONV)."""

    WORKPLACE = "workplace"
    HOME = "home"


PLACE_NAMES: Mapping[InconvenientPlace, tuple[str, str]] = {
    InconvenientPlace.WORKPLACE: ("their workplace", "工作单位"),
    InconvenientPlace.HOME: ("their home", "住所"),
}


# Recorded facts: what a person may state about a debt before the gate relies on it.

# Dates of things that already happened; ``time_barred_on`` may be a known future date.
PAST_FACT_DATES = frozenset({"initial_communication_on", "validation_notice_sent_on"})


def account_fact_problems(
    changes: Mapping[str, date | None], stored: Mapping[str, date | None], *, today: date
) -> list[tuple[str, str]]:
    """Return ``(field, message)`` for each changed validation date that cannot be true.

    A communication or notice cannot lie in the future, and the validation notice cannot
    predate the initial communication — judged on the account as it would be after the change.
    """
    problems = [
        (name, f"{value} is in the future (today is {today})")
        for name, value in changes.items()
        if name in PAST_FACT_DATES and value is not None and value > today
    ]
    if problems:
        return problems
    merged = {**stored, **changes}
    first = merged.get("initial_communication_on")
    notice = merged.get("validation_notice_sent_on")
    if first is not None and notice is not None and notice < first:
        problems.append(
            (
                "validation_notice_sent_on",
                f"{notice} is before the initial communication on {first}; "
                "a validation notice cannot predate it",
            )
        )
    return problems


def is_time_barred(time_barred_on: date | None, *, today: date) -> bool:
    """Tell whether a debt's statute of limitations has run out by ``today`` (US-SOL)."""
    return time_barred_on is not None and time_barred_on <= today


# Consumer-stated inconvenient times and places (US-INCONV), as people write them.


class StatedPreferenceError(ValueError):
    """A stated inconvenient time or place cannot be read."""


WEEKDAY_NAMES: Mapping[str, int] = {
    **{name: day for day, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{
        name: day
        for day, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    **{f"周{name}": day for day, name in enumerate("一二三四五六日")},
    **{f"星期{name}": day for day, name in enumerate("一二三四五六日")},
    "周天": 6,
    "星期天": 6,
}
PLACE_WORDS: Mapping[str, InconvenientPlace] = {
    "workplace": InconvenientPlace.WORKPLACE,
    "work": InconvenientPlace.WORKPLACE,
    "office": InconvenientPlace.WORKPLACE,
    "单位": InconvenientPlace.WORKPLACE,
    "工作单位": InconvenientPlace.WORKPLACE,
    "公司": InconvenientPlace.WORKPLACE,
    "home": InconvenientPlace.HOME,
    "residence": InconvenientPlace.HOME,
    "家": InconvenientPlace.HOME,
    "住所": InconvenientPlace.HOME,
    "住址": InconvenientPlace.HOME,
}
_SHORT_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class StatedWindow:
    """Local hours [start, end) in minutes of the day, on some weekdays (0 = Monday) or all."""

    start_minute: int
    end_minute: int
    weekdays: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        """Return the window as people write it, e.g. ``22:00-08:00`` or ``09:00-17:00 mon,fri``."""
        hours = f"{self.start_minute // 60:02}:{self.start_minute % 60:02}-"
        hours += f"{self.end_minute // 60:02}:{self.end_minute % 60:02}"
        if self.weekdays is None:
            return hours
        return f"{hours} {','.join(_SHORT_DAYS[day] for day in self.weekdays)}"


def _minute(text: str, whole: str) -> int:
    hour, _, minute = text.strip().partition(":")
    if not (hour.isdigit() and (minute.isdigit() or not minute) and len(minute) in (0, 2)):
        raise StatedPreferenceError(f"{whole!r}: write hours as HH:MM-HH:MM, e.g. 22:00-08:00")
    value = int(hour) * 60 + int(minute or 0)
    if int(minute or 0) >= 60 or value > 24 * 60:
        raise StatedPreferenceError(f"{whole!r}: {text.strip()} is not a time of day")
    return value


def _weekdays(text: str, whole: str) -> tuple[int, ...]:
    days: set[int] = set()
    for part in _split_days(text):
        first, _, last = part.partition("-")
        try:
            start = WEEKDAY_NAMES[first.strip().lower()]
            end = WEEKDAY_NAMES[last.strip().lower()] if last else start
        except KeyError:
            raise StatedPreferenceError(
                f"{whole!r}: name weekdays as mon, tue … sun (or 周一 … 周日), e.g. mon-fri"
            ) from None
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return tuple(sorted(days))


def _split_days(text: str) -> list[str]:
    """Split a weekday list written with commas, slashes, 、 or spaces."""
    text = text.replace("至", "-").replace("到", "-")
    while " -" in text or "- " in text:
        text = text.replace(" -", "-").replace("- ", "-")
    for separator in ("，", "、", "/", " "):
        text = text.replace(separator, ",")
    return [part for part in text.split(",") if part.strip()]


def parse_stated_window(text: str) -> StatedWindow:
    """Read one inconvenient window: ``22:00-08:00``, ``09:00-17:00 mon-fri``, ``12:00-13:00@sat``.

    Hours are the debtor's local wall-clock; an end at or before the start runs past midnight.
    """
    whole = text
    text = text.strip().replace("–", "-").replace("~", "-").replace("～", "-").replace("@", " ")
    hours, _, days = text.replace(" - ", "-", 1).partition(" ")
    start, dash, end = hours.partition("-")
    if not dash:
        raise StatedPreferenceError(f"{whole!r}: write hours as HH:MM-HH:MM, e.g. 22:00-08:00")
    start_minute = _minute(start, whole)
    end_minute = _minute(end, whole)
    if start_minute >= 24 * 60:
        raise StatedPreferenceError(f"{whole!r}: a window starts before 24:00")
    if start_minute == end_minute % (24 * 60):
        raise StatedPreferenceError(f"{whole!r}: a window needs an end different from its start")
    weekdays = _weekdays(days, whole) if days.strip() else None
    return StatedWindow(start_minute, end_minute, weekdays if weekdays != tuple(range(7)) else None)


def parse_stated_windows(text: str) -> tuple[StatedWindow, ...]:
    """Read inconvenient windows separated by ``;`` or newlines: ``22:00-08:00; 12:00-13:00``."""
    parts = text.replace("；", ";").replace("\n", ";").split(";")
    return tuple(parse_stated_window(part) for part in parts if part.strip())


def parse_places(values: Iterable[str]) -> frozenset[InconvenientPlace]:
    """Read inconvenient places: workplace or home (单位, 家 …); anything else is refused."""
    places: set[InconvenientPlace] = set()
    for value in values:
        key = value.strip().lower()
        if not key:
            continue
        place = PLACE_WORDS.get(key)
        if place is None:
            raise StatedPreferenceError(
                f"{value.strip()!r} is not a place the gate knows; use workplace or home"
            )
        places.add(place)
    return frozenset(places)


def split_places(text: str) -> frozenset[InconvenientPlace]:
    """Read a list of places separated by ``;``, commas or 、, e.g. ``workplace;home``."""
    for separator in ("；", "，", "、", ","):
        text = text.replace(separator, ";")
    return parse_places(text.split(";"))


# Facts that only some packs' rules read; any other fact matters in every jurisdiction.
FACT_RULES: Mapping[str, RuleKind] = {
    "work_contact_forbidden": RuleKind.WORKPLACE,
    "initial_communication_on": RuleKind.VALIDATION_NOTICE,
    "validation_notice_sent_on": RuleKind.VALIDATION_NOTICE,
    "time_barred_on": RuleKind.TIME_BARRED,
}


def facts_read_by(pack: RulePack, fields: Iterable[str]) -> tuple[str, ...]:
    """Return those of ``fields`` that a rule of ``pack`` reads (what its forms should ask)."""
    kinds = {rule.kind for rule in pack.rules}
    return tuple(name for name in fields if name not in FACT_RULES or FACT_RULES[name] in kinds)
