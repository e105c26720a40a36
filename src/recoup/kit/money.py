"""Money as integer minor units plus an ISO 4217 code; never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


_AMOUNT = re.compile(r"^[+-]?(\d+)(\.\d+)?$")


@cache
def known_currencies() -> frozenset[str]:
    """Return the ISO 4217 codes Recoup accepts."""
    return frozenset(list_currencies())


@cache
def minor_digits(currency: str) -> int:
    """Return how many decimal places ``currency`` has (CNY 2, JPY 0)."""
    if currency not in known_currencies():
        raise MoneyError(f"unknown currency code {currency!r} (use ISO 4217, e.g. CNY)")
    return int(get_currency_precision(currency))


def parse_amount(text: str, currency: str) -> int:
    """Parse a decimal string like ``1234.56`` into exact minor units of ``currency``."""
    cleaned = text.strip()
    if not _AMOUNT.match(cleaned):
        raise MoneyError(
            f"{text!r} is not an amount: write digits with an optional '.' and decimals, "
            "no thousands separators, e.g. 1234.56"
        )
    digits = minor_digits(currency)
    try:
        value = Decimal(cleaned)
    except InvalidOperation as error:  # pragma: no cover - the regex already guards this
        raise MoneyError(f"{text!r} is not an amount") from error
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{text!r} has more than {digits} decimal places for {currency}")
    return int(scaled)


def to_decimal(minor: int, currency: str) -> Decimal:
    """Return minor units as an exact Decimal in major units."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def format_amount(minor: int, currency: str, locale: str = "zh_CN") -> str:
    """Format minor units for people, e.g. ¥1,234.56."""
    return str(format_currency(to_decimal(minor, currency), currency, locale=locale))


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount of one currency."""

    minor: int
    currency: str

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{to_decimal(self.minor, self.currency)} {self.currency}"
