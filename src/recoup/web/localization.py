"""The zh-CN and en message catalogs, locale negotiation and locale-aware formatting."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time, get_datetime_format

from recoup.kit.clock import zone
from recoup.kit.money import format_amount

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
LOCALE_COOKIE = "recoup_locale"
LOCALE_NAMES = {"zh-CN": "中文", "en": "English"}
_BABEL_LOCALES = {"zh-CN": "zh_CN", "en": "en"}
# Parsed once: babel parses a locale name on every call otherwise, which is most of the cost
# of formatting a date or an amount.
_BABEL = {name: Locale.parse(code) for name, code in _BABEL_LOCALES.items()}


@cache
def catalog(locale: str) -> dict[str, str]:
    """Return the key → text catalog of ``locale``."""
    file_name = f"{_BABEL_LOCALES[locale]}.json"
    text = resources.files("recoup.web").joinpath("i18n", file_name).read_text(encoding="utf-8")
    messages: dict[str, str] = json.loads(text)
    return messages


def translate(locale: str, key: str, **params: Any) -> str:
    """Return the text of ``key`` in ``locale`` (the key itself when no catalog has it)."""
    text = catalog(locale).get(key) or catalog(DEFAULT_LOCALE).get(key) or key
    return text.format(**params) if params else text


def supported(value: str | None) -> str | None:
    """Return the supported locale ``value`` names (``zh``, ``zh-cn``, ``en-US``…), or ``None``."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    if tag == "zh" or tag.startswith(("zh-cn", "zh-hans", "zh-sg")):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """Return the best supported locale in an ``Accept-Language`` header, or ``None``."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        locale = supported(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else None


def negotiate(*, cookie: str | None, accept_language: str | None) -> str:
    """Choose the page locale: the viewer's switch (cookie), then the browser, then zh-CN."""
    return supported(cookie) or from_accept_language(accept_language) or DEFAULT_LOCALE


def money(minor: int | None, currency: str, locale: str) -> str:
    """Format minor units for people: ¥1,234.56."""
    if minor is None:
        return "—"
    return format_amount(minor, currency, _BABEL[locale])


def day(value: date | None, locale: str) -> str:
    """Format a calendar date: 2026年11月28日 / Nov 28, 2026."""
    if value is None:
        return "—"
    return str(format_date(value, "medium", locale=_BABEL[locale]))


def short_day(value: date, locale: str) -> str:
    """Format a near date without its year, with its weekday: 12月9日周三 / Wed, Dec 9."""
    return str(format_skeleton("MMMEd", value, locale=_BABEL[locale]))


def moment(value: datetime | None, locale: str, timezone: str) -> str:
    """Format an instant in ``timezone``: 2026年11月28日 16:05 / Nov 28, 2026, 4:05 PM."""
    if value is None:
        return "—"
    babel_locale = _BABEL[locale]
    # SQLite hands back naive datetimes; everything is stored in UTC.
    aware = value if value.tzinfo else value.replace(tzinfo=zone("UTC"))
    local = aware.astimezone(zone(timezone))
    pattern = str(get_datetime_format("medium", locale=babel_locale))
    return pattern.replace("{1}", str(format_date(local, "medium", locale=babel_locale))).replace(
        "{0}", str(format_time(local, "short", locale=babel_locale))
    )
