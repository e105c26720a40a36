"""Words for the codes pages show: policy names, rule parameters, audit actions, fields, zones.

Stored values stay codes (``auth.login``, ``channels = ["call"]``, ``Asia/Shanghai``); a page
shows them in its reader's language. A code the catalog does not know is shown as it is, so a
new action or field is never hidden, only untranslated until its key is added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, time
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import get_timezone_location, get_timezone_name
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from recoup.kit.clock import zone
from recoup.kit.errors import RecoupError
from recoup.web.localization import catalog, day, translate

_BABEL_LOCALES = {"zh-CN": "zh_CN", "en": "en"}
# Parsed once (babel parses a locale name on every call otherwise).
_BABEL = {name: Locale.parse(code) for name, code in _BABEL_LOCALES.items()}
_SLUG = re.compile(r"[^a-z0-9]+")
# Codes a rule parameter's list may hold, looked up in these catalog families in turn.
_VALUE_FAMILIES = ("compliance.channel", "rule.value")


def _known(locale: str, key: str) -> str | None:
    return catalog(locale).get(key)


def coded(locale: str, family: str, code: str) -> str:
    """Return the words for ``code`` in the catalog family ``family`` (the code if none)."""
    return _known(locale, f"{family}.{code}") or code


def policy_name(name: str, locale: str) -> str:
    """Return a policy's name for people: a preset's name is translated, a chosen one kept."""
    slug = _SLUG.sub("_", name.lower()).strip("_")
    return _known(locale, f"compliance.policy.preset.{slug}") or name


def parameter_name(name: str, locale: str) -> str:
    """Return the words for a rule parameter's name (``start`` → 开始)."""
    return coded(locale, "rule.parameter", name)


def parameter_value(value: Any, locale: str) -> str:
    """Return a rule parameter's value in words: channel and status codes named, yes/no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return translate(locale, "compliance.yes" if value else "compliance.no")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return "、".join(value_word(str(item), locale) for item in items) if items else "—"
    if isinstance(value, str):
        return value_word(value, locale)
    return str(value)


def value_word(code: str, locale: str) -> str:
    """Return the words for a code a rule parameter holds (``ai_call`` → 智能语音)."""
    for family in _VALUE_FAMILIES:
        found = _known(locale, f"{family}.{code}")
        if found:
            return found
    return code


def channels(codes: Iterable[str], locale: str) -> str:
    """Return channel codes as their names (``call, sms`` → 电话、短信)."""
    return "、".join(coded(locale, "compliance.channel", str(code)) for code in codes)


def audit_action(action: str, locale: str) -> str:
    """Return what an audit action code means (``auth.login`` → 登录)."""
    return coded(locale, "audit.action", action)


def field_name(name: str, locale: str) -> str:
    """Return the words for a data field (a column of an import, a model feature)."""
    return coded(locale, "field", name)


def zone_name(name: str | None, locale: str) -> str:
    """Return an IANA time zone the way people say it (Asia/Shanghai → 中国时间)."""
    if not name:
        return "—"
    try:
        tzinfo = zone(name)
    except Exception:  # an unknown zone stored by an import still shows as written
        return name
    babel_locale = _BABEL[locale]
    try:
        return str(get_timezone_name(tzinfo, "long", locale=babel_locale))
    except LookupError:
        return str(get_timezone_location(tzinfo, locale=babel_locale))


def language_name(code: str | None, locale: str) -> str:
    """Return a language/locale code's name in the reader's language (zh-CN → 中文（中国）)."""
    if not code:
        return "—"
    try:
        return str(Locale.parse(code.replace("-", "_")).get_display_name(_BABEL[locale]) or code)
    except (ValueError, UnknownLocaleError):
        return code


def reject_code(code: str, locale: str) -> str:
    """Return what an import reject code means (``bad_phone`` → 手机号码无效)."""
    return coded(locale, "imports.reject", code)


def reject_reason(reason: str, code: str, locale: str) -> str:
    """Return why an import row was rejected: in English as the check wrote it, else by code."""
    if locale == "en":
        return reason
    return _known(locale, f"imports.reject_reason.{code}") or reason


def audit_object(object_type: str, locale: str) -> str:
    """Return the words for the kind of thing an audit event is about (``debtor`` → 债务人)."""
    return coded(locale, "audit.object", object_type)


# Catalog families naming the categories of a model feature (``credit_card`` → 信用卡).
_CATEGORY_FAMILIES = {
    "product": "accounts.product",
    "customer_type": "debtors.kind",
    "age_band": "field.age_band",
}


def number(value: float, locale: str) -> str:
    """Format a bin edge in the reader's locale, without exponents (2,261,140 / 0.0286589)."""
    return str(format_decimal(value, format="#,##0.######", locale=_BABEL[locale]))


def interval(low: float | None, high: float | None, locale: str) -> str:
    """Return a half-open numeric bin [low, high) as people read it (< 25, ≥ 55, [25, 35))."""
    if low is None and high is None:
        return translate(locale, "models.bin.all")
    if low is None:
        return f"< {number(high, locale)}" if high is not None else ""
    if high is None:
        return f"≥ {number(low, locale)}"
    return f"[{number(low, locale)}, {number(high, locale)})"


def categories(feature: str, values: Iterable[str], locale: str) -> str:
    """Return a categorical bin's categories in words (under 25 → 25岁以下)."""
    family = _CATEGORY_FAMILIES.get(feature)
    words = [coded(locale, family, value) if family else value for value in values]
    return ("、" if locale == "zh-CN" else ", ").join(words)


def bin_word(label: str, locale: str) -> str:
    """Return the words for a model's special bins (Missing → 缺失, Other → 其他)."""
    return coded(locale, "models.bin", label.lower())


_IANA_ZONE = re.compile(
    r"\b(?:Africa|America|Asia|Atlantic|Australia|Europe|Indian|Pacific)/[A-Za-z_]+"
)


def zones_named(text: str, locale: str) -> str:
    """Return a stored message with each IANA zone it quotes named for people."""
    return _IANA_ZONE.sub(lambda match: zone_name(match.group(0), locale), text)


def refusal(error: RecoupError, locale: str, *, lead: bool = True) -> str:
    """Return why a service refused, for a page: in the catalog's words when the error names
    its message, else the service's detail after a lead-in in the reader's language."""
    if error.message_key and _known(locale, error.message_key):
        return translate(locale, error.message_key, **error.message_params)
    if locale == "en" or not lead:
        return error.message
    opening = _known(locale, f"error.lead.{error.status_code}") or translate(locale, "error.lead")
    return f"{opening}{error.message}"


# Values of a strategy reason that are codes of the strategy document (shown as written).
_REASON_CODES = ("segment", "arm", "step", "queue")


def strategy_reason(code: str | None, params: Mapping[str, Any] | None, locale: str) -> Markup:
    """Return why a case is on its step in the reader's words (``strategy.reason.<code>``):
    events, actions and dates in words, the document's codes as written (not translated)."""
    if not code:
        return Markup("")
    values: dict[str, Any] = {}
    then = None
    for name, value in (params or {}).items():
        if name == "then":
            then = value
        elif name in _REASON_CODES:
            values[name] = Markup('<span class="mono" translate="no">{}</span>').format(value)
        elif name == "event":
            values[name] = escape(coded(locale, "strategy.event", str(value)))
        elif name == "action":
            values[name] = escape(
                _known(locale, f"strategy.reason.action.{value}")
                or coded(locale, "strategy.exit", str(value))
            )
        elif name == "until":
            values[name] = escape(day(date.fromisoformat(str(value)), locale))
        else:
            values[name] = escape(value)
    text = Markup(escape(translate(locale, f"strategy.reason.{code}")).format(**values))
    if isinstance(then, Mapping) and then.get("code"):
        return Markup(escape(translate(locale, "strategy.reason.then"))).format(
            first=text, then=strategy_reason(str(then["code"]), then.get("params"), locale)
        )
    return text
