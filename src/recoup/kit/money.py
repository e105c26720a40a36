"""Money as integer minor units plus an ISO 4217 code; never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, list_currencies


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


class AmountRefused(MoneyError):
    """An amount a person or system sent that Recoup will not take; ``code`` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


# Larger than any plausible consumer or SME balance (100 billion in major units).
MAX_AMOUNT_MINOR = 10**13
MAX_AMOUNT_LENGTH = 32
# ASCII digits only: ``\d`` would also take full-width (１２３) and Arabic-Indic (٣٠) digits.
_AMOUNT = re.compile(r"-?([0-9]+)(\.[0-9]+)?")
_PLAIN_CENTS = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,2}))?")


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
    """Parse a decimal string like ``1234.56`` into exact minor units of ``currency``.

    Exactly that shape: ASCII digits, an optional ``-``, ``.`` and decimals; no ``+``, no
    spaces or line breaks around it, no other scripts' digits.
    """
    if not _AMOUNT.fullmatch(text):
        raise MoneyError(
            f"{text!r} is not an amount: write digits 0-9 with an optional '.' and decimals, "
            "no '+', spaces or thousands separators, e.g. 1234.56"
        )
    digits = minor_digits(currency)
    try:
        value = Decimal(text)
    except InvalidOperation as error:  # pragma: no cover - the regex already guards this
        raise MoneyError(f"{text!r} is not an amount") from error
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{text!r} has more than {digits} decimal places for {currency}")
    return int(scaled)


def parse_payable_amount(text: str, currency: str) -> int:
    """Parse a non-negative amount someone sent (a file cell, an API field, a form) into minor
    units; raise ``AmountRefused`` with a code (``bad_currency``, ``bad_amount``,
    ``negative_amount``, ``absurd_amount``) and a reason a person can act on."""
    try:
        digits = minor_digits(currency)
    except MoneyError as error:
        raise AmountRefused("bad_currency", str(error)) from None
    match = _PLAIN_CENTS.fullmatch(text)
    if match is not None and digits == 2:
        # The common shape, without Decimal: imports parse millions of these.
        whole, decimals = match.groups()
        minor = int(whole) * 100 + (int(decimals.ljust(2, "0")) if decimals else 0)
    else:
        if len(text) > MAX_AMOUNT_LENGTH:
            raise AmountRefused(
                "bad_amount", f"an amount has at most {MAX_AMOUNT_LENGTH} characters"
            )
        try:
            minor = parse_amount(text, currency)
        except MoneyError as error:
            raise AmountRefused("bad_amount", str(error)) from None
        if minor < 0:
            raise AmountRefused("negative_amount", "amounts cannot be negative")
    if minor > MAX_AMOUNT_MINOR:
        raise AmountRefused(
            "absurd_amount", "larger than any plausible balance: check the decimal point and units"
        )
    return minor


def to_decimal(minor: int, currency: str) -> Decimal:
    """Return minor units as an exact Decimal in major units."""
    return Decimal(minor).scaleb(-minor_digits(currency))


def format_amount(minor: int, currency: str, locale: str | Locale = "zh_CN") -> str:
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
