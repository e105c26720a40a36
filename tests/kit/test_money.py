from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.kit.money import (
    AmountRefused,
    Money,
    MoneyError,
    format_amount,
    minor_digits,
    parse_amount,
    parse_payable_amount,
    to_decimal,
)


class TestParseAmount:
    @pytest.mark.parametrize(
        ("text", "currency", "minor"),
        [
            ("1234.56", "CNY", 123456),
            ("0.1", "CNY", 10),
            ("7", "CNY", 700),
            ("1000", "JPY", 1000),
            ("12.30", "USD", 1230),
            ("-5", "CNY", -500),
        ],
    )
    def test_exact_conversion(self, text: str, currency: str, minor: int) -> None:
        assert parse_amount(text, currency) == minor

    @pytest.mark.parametrize(
        "text",
        [
            "1e309",
            "12,34",
            "NaN",
            "inf",
            "",
            "1.2.3",
            "¥12",
            "1 000",
            "１２３.４５",  # full-width digits
            "٣٠",  # Arabic-Indic digits
            "+30",
            " 12.30 ",
            "30\n",
            "\t30",
        ],
    )
    def test_refuses_what_is_not_a_plain_decimal(self, text: str) -> None:
        with pytest.raises(MoneyError, match="not an amount"):
            parse_amount(text, "CNY")

    def test_refuses_more_decimals_than_the_currency_has(self) -> None:
        with pytest.raises(MoneyError, match="more than 2 decimal places"):
            parse_amount("0.001", "CNY")

    def test_refuses_unknown_currency(self) -> None:
        with pytest.raises(MoneyError, match="unknown currency"):
            parse_amount("1", "XYZ")

    @given(st.integers(min_value=-(10**15), max_value=10**15))
    def test_round_trips_through_decimal_text(self, minor: int) -> None:
        assert parse_amount(str(to_decimal(minor, "CNY")), "CNY") == minor


class TestParsePayableAmount:
    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("１２３.４５", "bad_amount"),
            ("٣٠", "bad_amount"),
            ("+30", "bad_amount"),
            (" 30", "bad_amount"),
            ("30\n", "bad_amount"),
            ("-0.01", "negative_amount"),
            ("100000000000.01", "absurd_amount"),
            ("1", "bad_currency"),
        ],
    )
    def test_refuses_with_a_code(self, text: str, code: str) -> None:
        currency = "XYZ" if code == "bad_currency" else "CNY"
        with pytest.raises(AmountRefused) as refused:
            parse_payable_amount(text, currency)
        assert refused.value.code == code
        assert str(refused.value)

    @given(st.integers(min_value=0, max_value=10**13), st.sampled_from(["CNY", "USD", "JPY"]))
    def test_takes_plain_amounts(self, minor: int, currency: str) -> None:
        text = str(to_decimal(minor, currency))
        assert parse_payable_amount(text, currency) == minor


class TestMoney:
    def test_adds_same_currency(self) -> None:
        assert Money(100, "CNY") + Money(50, "CNY") == Money(150, "CNY")

    def test_refuses_mixed_currency(self) -> None:
        with pytest.raises(MoneyError):
            Money(1, "CNY") - Money(1, "USD")

    def test_formats_for_people(self) -> None:
        assert format_amount(123456, "CNY", "zh_CN") == "¥1,234.56"
        assert to_decimal(123456, "CNY") == Decimal("1234.56")
        assert minor_digits("JPY") == 0
