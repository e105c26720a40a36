"""Where a debtor may be: time zones inferred from the data, each with its source.

Regulation F asks a collector to treat a time as convenient only if it is convenient in
every location the collector has information about; CN practice reads Xinjiang the same
way, since Beijing and Xinjiang time are both in everyday use there. So every zone the
data points to is kept, and the gate applies all of them. The institution's own zone is
only a fallback: it says nothing about where the debtor is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_zones

__all__ = [
    "ZoneSource",
    "ZonedFrom",
    "address_zones",
    "debtor_zones",
    "phone_zones_for",
]


class ZoneSource(StrEnum):
    """Where a zone of a debtor or contact point came from."""

    INSTITUTION = "institution"
    COLUMN = "column"
    ADDRESS = "address"
    PHONE = "phone"
    CONTACT_POINT = "contact_point"


@dataclass(frozen=True, slots=True)
class ZonedFrom:
    """One zone the debtor may be in and the data that says so."""

    zone: str
    source: ZoneSource


# A number mapped to more zones than this (toll-free, non-geographic) says nothing useful.
MAX_PHONE_ZONES = 3
_UNKNOWN_ZONE = "Etc/Unknown"

_EASTERN = "America/New_York"
_CENTRAL = "America/Chicago"
_MOUNTAIN = "America/Denver"
_PACIFIC = "America/Los_Angeles"

# Every zone in use somewhere in the state: a debtor known only by state may be in any.
US_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": (_CENTRAL,),
    "AK": ("America/Anchorage", "America/Adak"),
    "AZ": ("America/Phoenix",),
    "AR": (_CENTRAL,),
    "CA": (_PACIFIC,),
    "CO": (_MOUNTAIN,),
    "CT": (_EASTERN,),
    "DE": (_EASTERN,),
    "DC": (_EASTERN,),
    "FL": (_EASTERN, _CENTRAL),
    "GA": (_EASTERN,),
    "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", _PACIFIC),
    "IL": (_CENTRAL,),
    "IN": ("America/Indiana/Indianapolis", _CENTRAL),
    "IA": (_CENTRAL,),
    "KS": (_CENTRAL, _MOUNTAIN),
    "KY": (_EASTERN, _CENTRAL),
    "LA": (_CENTRAL,),
    "ME": (_EASTERN,),
    "MD": (_EASTERN,),
    "MA": (_EASTERN,),
    "MI": ("America/Detroit", _CENTRAL),
    "MN": (_CENTRAL,),
    "MS": (_CENTRAL,),
    "MO": (_CENTRAL,),
    "MT": (_MOUNTAIN,),
    "NE": (_CENTRAL, _MOUNTAIN),
    "NV": (_PACIFIC,),
    "NH": (_EASTERN,),
    "NJ": (_EASTERN,),
    "NM": (_MOUNTAIN,),
    "NY": (_EASTERN,),
    "NC": (_EASTERN,),
    "ND": (_CENTRAL, _MOUNTAIN),
    "OH": (_EASTERN,),
    "OK": (_CENTRAL,),
    "OR": (_PACIFIC, "America/Boise"),
    "PA": (_EASTERN,),
    "RI": (_EASTERN,),
    "SC": (_EASTERN,),
    "SD": (_CENTRAL, _MOUNTAIN),
    "TN": (_CENTRAL, _EASTERN),
    "TX": (_CENTRAL, _MOUNTAIN),
    "UT": (_MOUNTAIN,),
    "VT": (_EASTERN,),
    "VA": (_EASTERN,),
    "WA": (_PACIFIC,),
    "WV": (_EASTERN,),
    "WI": (_CENTRAL,),
    "WY": (_MOUNTAIN,),
    "PR": ("America/Puerto_Rico",),
    "GU": ("Pacific/Guam",),
    "VI": ("America/St_Thomas",),
    "AS": ("Pacific/Pago_Pago",),
    "MP": ("Pacific/Saipan",),
}
US_STATE_NAMES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "washington dc": "DC", "washington d.c.": "DC", "florida": "FL", "georgia": "GA",
    "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA",
    "kansas": "KS", "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
    "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
    "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
    "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT",
    "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI",
    "wyoming": "WY", "puerto rico": "PR", "guam": "GU", "virgin islands": "VI",
    "us virgin islands": "VI", "american samoa": "AS", "northern mariana islands": "MP",
}  # fmt: skip
# Large cities, for an address that names the city but not the state.
US_CITY_STATES: dict[str, str] = {
    "los angeles": "CA", "san francisco": "CA", "san diego": "CA", "san jose": "CA",
    "seattle": "WA", "new york": "NY", "new york city": "NY", "brooklyn": "NY",
    "chicago": "IL", "houston": "TX", "dallas": "TX", "san antonio": "TX", "austin": "TX",
    "phoenix": "AZ", "philadelphia": "PA", "denver": "CO", "las vegas": "NV",
    "honolulu": "HI", "anchorage": "AK", "miami": "FL", "atlanta": "GA", "boston": "MA",
    "detroit": "MI",
}  # fmt: skip

_BEIJING = "Asia/Shanghai"
# Xinjiang keeps Beijing time officially and Xinjiang time (UTC+6) in daily life.
_XINJIANG = (_BEIJING, "Asia/Urumqi")
CN_PROVINCE_ZONES: dict[str, tuple[str, ...]] = {
    "新疆": _XINJIANG,
    "新疆维吾尔自治区": _XINJIANG,
    "xinjiang": _XINJIANG,
    "香港": ("Asia/Hong_Kong",),
    "hong kong": ("Asia/Hong_Kong",),
    "澳门": ("Asia/Macau",),
    "澳門": ("Asia/Macau",),
    "macau": ("Asia/Macau",),
    "macao": ("Asia/Macau",),
    "台湾": ("Asia/Taipei",),
    "台灣": ("Asia/Taipei",),
    "taiwan": ("Asia/Taipei",),
}
# Every other province, region and municipality of the mainland keeps Beijing time.
CN_MAINLAND = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江",
    "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南", "广东", "广西",
    "海南", "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏",
    "beijing", "tianjin", "shanghai", "chongqing", "hebei", "shanxi", "inner mongolia",
    "neimenggu", "liaoning", "jilin", "heilongjiang", "jiangsu", "zhejiang", "anhui",
    "fujian", "jiangxi", "shandong", "henan", "hubei", "hunan", "guangdong", "guangxi",
    "hainan", "sichuan", "guizhou", "yunnan", "tibet", "xizang", "shaanxi", "gansu",
    "qinghai", "ningxia",
)  # fmt: skip
XINJIANG_CITIES = frozenset(
    {"乌鲁木齐", "喀什", "伊宁", "克拉玛依", "和田", "阿克苏", "urumqi", "kashgar", "kashi"}
)
_CN_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市")


_EN_SUFFIXES = (
    " special administrative region",
    " sar",
    " autonomous region",
    " zhuang",
    " uygur",
    " uyghur",
    " uighur",
    " hui",
    " municipality",
    " province",
    " sheng",
    " shi",
)


def _cn_province(name: str) -> tuple[str, ...]:
    key = name.strip().lower()
    if key in CN_PROVINCE_ZONES:
        return CN_PROVINCE_ZONES[key]
    for suffix in _CN_SUFFIXES:
        if key.endswith(suffix):
            key = key.removesuffix(suffix)
            break
    for suffix in _EN_SUFFIXES:
        key = key.removesuffix(suffix)
    key = key.strip()
    if key in CN_PROVINCE_ZONES:
        return CN_PROVINCE_ZONES[key]
    if key in CN_MAINLAND:
        return (_BEIJING,)
    return ()


def _us_state(name: str) -> tuple[str, ...]:
    key = name.strip().rstrip(".")
    code = key.upper() if len(key) == 2 else US_STATE_NAMES.get(key.lower())
    return US_STATE_ZONES.get(code or "", ())


# A portfolio repeats a few hundred provinces and cities: the daily cycle asks per debtor.
@lru_cache(maxsize=8192)
def address_zones(province: str | None, city: str | None = None) -> tuple[str, ...]:
    """Return the zones of an address given by province (or US state) and city."""
    if province:
        found = _cn_province(province) or _us_state(province)
        if found:
            return found
    if city:
        key = city.strip().lower().removesuffix("市")
        if key in XINJIANG_CITIES:
            return _XINJIANG
        state = US_CITY_STATES.get(key)
        if state is not None:
            return US_STATE_ZONES[state]
    return ()


def phone_zones_for(number: str, region: str) -> tuple[str, ...]:
    """Return the zones a valid phone number's area is in, or none when it says nothing."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return ()
    if not phonenumbers.is_valid_number(parsed):
        return ()
    zones = tuple(
        zone for zone in phone_zones.time_zones_for_number(parsed) if zone != _UNKNOWN_ZONE
    )
    return zones if len(zones) <= MAX_PHONE_ZONES else ()


def debtor_zones(
    *,
    zone: str,
    source: ZoneSource,
    address: Sequence[str] = (),
    phones: Iterable[ZonedFrom] = (),
) -> tuple[ZonedFrom, ...]:
    """Return every zone the data places the debtor in, first the stored one, without repeats.

    The institution's zone counts only when nothing in the data says where the debtor is.
    """
    found: list[ZonedFrom] = []
    if source is not ZoneSource.INSTITUTION:
        found.append(ZonedFrom(zone, source))
    found += [ZonedFrom(each, ZoneSource.ADDRESS) for each in address]
    found += phones
    if not found:
        found.append(ZonedFrom(zone, source))
    unique: dict[str, ZonedFrom] = {}
    for each in found:
        unique.setdefault(each.zone, each)
    return tuple(unique.values())
