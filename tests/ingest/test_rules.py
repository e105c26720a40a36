"""Pure row validation: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.ingest.rules import (
    IMPORT_HEARTBEAT_TIMEOUT,
    AccountRecord,
    ContactRecord,
    DebtorRecord,
    PaymentRecord,
    Problem,
    RowContext,
    SeenKeys,
    clean_text,
    import_run_status,
    mask_for_report,
    neutralise_formula,
    normalise_header,
    parse_money,
    parse_phone,
    storable,
    validate_account,
    validate_contact,
    validate_debtor,
    validate_payment,
)
from recoup.kit.money import parse_amount
from recoup.portfolio.rules import resident_id_check_char

CONTEXT = RowContext(
    region="CN",
    currency="CNY",
    timezone="Asia/Shanghai",
    now=datetime(2025, 11, 28, 4, 0, tzinfo=UTC),
)
US_CONTEXT = RowContext(
    region="US",
    currency="USD",
    timezone="America/New_York",
    now=datetime(2025, 11, 28, 4, 0, tzinfo=UTC),
)


def codes(result: object) -> set[str]:
    assert isinstance(result, list), f"expected problems, got {result!r}"
    return {problem.code for problem in result if isinstance(problem, Problem)}


def account(**values: str) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "external_id": "A1",
        "debtor_external_id": "D1",
        "product": "credit_card",
        "principal": "1234.56",
        "interest": "10",
        "days_past_due": "45",
    }
    row.update(values)
    return row


class TestAmounts:
    @pytest.mark.parametrize(
        ("text", "minor"),
        [
            ("1234.56", 123456),
            ("0", 0),
            ("0.5", 50),
            ("7.00", 700),
            ("99999999999.99", 9999999999999),
        ],
    )
    def test_exact_minor_units(self, text: str, minor: int) -> None:
        assert parse_money(text, "CNY") == (minor, None, "")

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("1e309", "bad_amount"),
            ("12,34", "bad_amount"),
            ("1,234.56", "bad_amount"),
            ("NaN", "bad_amount"),
            ("inf", "bad_amount"),
            ("-5", "negative_amount"),
            ("-0.01", "negative_amount"),
            ("1.234", "bad_amount"),
            ("100000000000.01", "absurd_amount"),
            ("9" * 40, "bad_amount"),
            ("¥12", "bad_amount"),
            ("=1+1", "bad_amount"),
            ("+3", "bad_amount"),
            ("１２３.４５", "bad_amount"),
            ("٣٠", "bad_amount"),
        ],
    )
    def test_rejects(self, text: str, code: str) -> None:
        minor, problem, reason = parse_money(text, "CNY")
        assert (minor, problem) == (0, code)
        assert reason

    def test_zero_decimal_currency(self) -> None:
        assert parse_money("1500", "JPY") == (1500, None, "")
        assert parse_money("15.5", "JPY")[1] == "bad_amount"

    @given(st.integers(min_value=0, max_value=10**13), st.sampled_from(["CNY", "USD"]))
    def test_fast_path_agrees_with_kit_money(self, minor: int, currency: str) -> None:
        text = f"{minor // 100}.{minor % 100:02d}"
        assert parse_money(text, currency)[0] == parse_amount(text, currency) == minor

    @given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
    def test_decimal_text_is_exact(self, value: Decimal) -> None:
        assert parse_money(str(value), "CNY")[0] == int(value * 100)

    @given(st.floats(allow_nan=True, allow_infinity=True))
    def test_never_crashes_on_float_text(self, value: float) -> None:
        minor, code, _reason = parse_money(repr(value), "CNY")
        assert code is not None or minor >= 0


class TestText:
    def test_formula_injection_is_rejected(self) -> None:
        for text in ('=HYPERLINK("http://evil.example","点我")', "+1+2", "-2+3", "@SUM(A1)"):
            assert clean_text(text)[1] == "formula_injection"

    def test_line_breaks_and_tabs_become_spaces(self) -> None:
        assert clean_text("四川省成都市\n武侯区\t人民南路") == (
            "四川省成都市 武侯区 人民南路",
            None,
            "",
        )

    def test_full_width_space_is_kept(self) -> None:
        assert clean_text("张　伟")[1] is None

    @pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\u202e", "\ufeff"])
    def test_control_characters_are_rejected(self, character: str) -> None:
        assert clean_text(f"张{character}伟")[1] == "control_character"

    def test_undecodable_bytes_are_rejected(self) -> None:
        assert clean_text("张\udcb7伟")[1] == "bad_encoding"

    def test_over_long(self) -> None:
        assert clean_text("字" * 201)[1] == "too_long"

    def test_report_values_are_masked_and_formula_safe(self) -> None:
        assert mask_for_report("13812345678", "contact") == "138****5678"
        assert mask_for_report("110101198803140212", "national_id") == "110101********0212"
        assert mask_for_report("=HYPERLINK(1)", None).startswith("'=")
        assert neutralise_formula("@x") == "'@x"
        assert len(mask_for_report("x" * 10_000, None)) <= 81

    def test_header_names(self) -> None:
        assert normalise_header("\ufeff External ID ") == "external_id"
        assert normalise_header("Debtor-External-Id") == "debtor_external_id"


class TestPhones:
    @pytest.mark.parametrize("text", ["138 1234 5678", "+86 138-1234-5678", "13812345678"])
    def test_cn_mobile_is_stored_as_national_digits(self, text: str) -> None:
        assert parse_phone(text, region="CN", mobile=True) == ("13812345678", None, "")

    def test_cn_landline_keeps_its_area_code(self) -> None:
        assert parse_phone("0755 2612 3456", region="CN", mobile=False)[0] == "0755-26123456"

    def test_foreign_number_is_stored_as_e164(self) -> None:
        assert parse_phone("+852 9123 4567", region="CN", mobile=True)[0] == "+85291234567"

    def test_landline_is_not_a_mobile(self) -> None:
        assert parse_phone("010-62345678", region="CN", mobile=True)[1] == "not_mobile"
        assert parse_phone("010-62345678", region="CN", mobile=False)[1] is None

    @pytest.mark.parametrize("text", ["12345", "1381234567", "abc", "+86 138"])
    def test_invalid(self, text: str) -> None:
        assert parse_phone(text, region="CN", mobile=True)[1] == "bad_phone"

    def test_region_comes_from_the_institution(self) -> None:
        assert parse_phone("(201) 555-0123", region="US", mobile=True)[0] == "2015550123"


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


class TestDebtors:
    def test_valid_individual_gets_birth_date_from_id(self) -> None:
        result = validate_debtor(
            {"external_id": "D1", "name": "张伟", "national_id": "110101198803140212"}, CONTEXT
        )
        assert isinstance(result, DebtorRecord)
        assert result.birth_date == date(1988, 3, 14)
        assert result.id_kind == "resident_id"
        assert result.timezone == "Asia/Shanghai"

    @given(
        st.sampled_from(["110101", "310104", "440305"]),
        st.dates(min_value=date(1940, 1, 1), max_value=date(2005, 12, 31)),
        st.integers(min_value=0, max_value=999),
    )
    def test_any_valid_resident_id_passes(self, region: str, born: date, sequence: int) -> None:
        number = resident_id(f"{region}{born:%Y%m%d}{sequence:03d}")
        result = validate_debtor(
            {"external_id": "D1", "name": "张伟", "national_id": number}, CONTEXT
        )
        assert isinstance(result, DebtorRecord)
        assert result.birth_date == born

    @given(st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
    def test_one_mistyped_digit_is_caught(self, position: int, shift: int) -> None:
        good = "110101198803140212"
        digit = str((int(good[position]) + shift) % 10)
        bad = good[:position] + digit + good[position + 1 :]
        result = validate_debtor({"external_id": "D1", "name": "张伟", "national_id": bad}, CONTEXT)
        assert codes(result) == {"bad_resident_id"}

    def test_business_needs_a_credit_code(self) -> None:
        row = {"external_id": "D8", "name": "深圳市鹏程商贸有限公司", "kind": "business"}
        assert isinstance(
            validate_debtor({**row, "national_id": "91440300MA5F8K2Q78"}, CONTEXT), DebtorRecord
        )
        assert codes(validate_debtor({**row, "national_id": "91440300MA5F8K2Q79"}, CONTEXT)) == {
            "bad_credit_code"
        }

    def test_birth_date_must_match_the_id(self) -> None:
        row = {
            "external_id": "D1",
            "name": "张伟",
            "national_id": "110101198803140212",
            "birth_date": "1988-03-15",
        }
        assert codes(validate_debtor(row, CONTEXT)) == {"inconsistent"}

    def test_several_problems_are_all_reported(self) -> None:
        row = {
            "external_id": "bad id",
            "name": "=cmd|' /C calc'!A0",
            "timezone": "Mars/Base",
            "deceased": "maybe",
            "birth_date": "2030-01-01",
        }
        assert codes(validate_debtor(row, CONTEXT)) == {
            "bad_external_id",
            "formula_injection",
            "bad_timezone",
            "bad_flag",
            "future_date",
        }

    def test_chinese_enum_words(self) -> None:
        result = validate_debtor({"external_id": "D1", "name": "某公司", "kind": "企业"}, CONTEXT)
        assert isinstance(result, DebtorRecord)
        assert result.kind == "business"


class TestContacts:
    def test_mobile_email_and_relation(self) -> None:
        row = {
            "external_id": "C1",
            "debtor_external_id": "D1",
            "kind": "mobile",
            "value": "13812345678",
        }
        result = validate_contact({**row, "relation": "配偶", "contact_name": "李秀英"}, CONTEXT)
        assert isinstance(result, ContactRecord)
        assert (result.value, result.relation, result.third_party) == (
            "13812345678",
            "spouse",
            True,
        )
        email = validate_contact(
            {**row, "kind": "email", "value": "Zhang.Wei@Example.COM"}, CONTEXT
        )
        assert isinstance(email, ContactRecord)
        assert email.value == "Zhang.Wei@example.com"

    @pytest.mark.parametrize(
        ("kind", "value", "code"),
        [
            ("mobile", "1381234", "bad_phone"),
            ("email", "not-an-email", "bad_email"),
            ("fax", "1", "bad_choice"),
        ],
    )
    def test_bad_values(self, kind: str, value: str, code: str) -> None:
        row = {"external_id": "C1", "debtor_external_id": "D1", "kind": kind, "value": value}
        assert code in codes(validate_contact(row, CONTEXT))

    def test_verified_in_the_future(self) -> None:
        row = {
            "external_id": "C1",
            "debtor_external_id": "D1",
            "kind": "mobile",
            "value": "13812345678",
            "verified_at": "2031-01-01T00:00:00+08:00",
        }
        assert codes(validate_contact(row, CONTEXT)) == {"future_date"}


class TestAccounts:
    def test_valid_account_gets_its_bucket(self) -> None:
        result = validate_account(account(), CONTEXT)
        assert isinstance(result, AccountRecord)
        assert (result.principal, result.interest, result.bucket, result.status) == (
            123456,
            1000,
            "M2",
            "delinquent",
        )
        assert result.status_given is False

    @pytest.mark.parametrize(
        ("values", "code"),
        [
            ({"principal": "-100"}, "negative_amount"),
            ({"principal": "1e309"}, "bad_amount"),
            ({"interest": "12,34"}, "bad_amount"),
            ({"principal": "NaN"}, "bad_amount"),
            ({"days_past_due": "-3"}, "bad_days_past_due"),
            ({"days_past_due": "99999"}, "bad_days_past_due"),
            ({"overdue_amount": "5000"}, "impossible_balance"),
            ({"status": "current"}, "inconsistent"),
            ({"product": "yacht"}, "bad_choice"),
            ({"currency": "XYZ"}, "bad_currency"),
            ({"due_date": "31/03/2025"}, "bad_date"),
            ({"opened_on": "2099-01-01"}, "future_date"),
            ({"principal": ""}, "missing_value"),
        ],
    )
    def test_rejects(self, values: dict[str, str], code: str) -> None:
        assert code in codes(validate_account(account(**values), CONTEXT))


class TestPayments:
    def test_naive_time_is_institution_time(self) -> None:
        row = {
            "external_id": "P1",
            "account_external_id": "A1",
            "amount": "100",
            "paid_at": "2025-11-01 09:00",
        }
        result = validate_payment(row, CONTEXT)
        assert isinstance(result, PaymentRecord)
        assert result.paid_at == datetime(2025, 11, 1, 1, 0, tzinfo=UTC)
        assert result.currency is None

    @pytest.mark.parametrize(
        ("values", "code"),
        [
            ({"paid_at": "2030-01-01T00:00:00+08:00"}, "future_date"),
            ({"amount": "0"}, "not_positive"),
            ({"amount": "-5"}, "negative_amount"),
            ({"paid_at": "yesterday"}, "bad_datetime"),
            ({"channel": "bitcoin"}, "bad_choice"),
        ],
    )
    def test_rejects(self, values: dict[str, str], code: str) -> None:
        row = {
            "external_id": "P1",
            "account_external_id": "A1",
            "amount": "100",
            "paid_at": "2025-11-01T09:00:00+08:00",
        }
        assert code in codes(validate_payment({**row, **values}, US_CONTEXT))


class TestSeenKeys:
    def test_first_occurrence_wins_across_chunks(self) -> None:
        seen = SeenKeys()
        assert seen.first_time(["A", "B", "A"]) == [True, True, False]
        assert seen.first_time(["C", "B"]) == [True, False]
        assert seen.first_time([]) == []

    @given(
        st.lists(st.text(min_size=1, max_size=8), max_size=200),
        st.integers(min_value=1, max_value=50),
    )
    def test_matches_a_set(self, keys: list[str], chunk: int) -> None:
        seen = SeenKeys()
        answers: list[bool] = []
        for start in range(0, len(keys), chunk):
            answers += seen.first_time(keys[start : start + chunk])
        expected, known = [], set()
        for key in keys:
            expected.append(key not in known)
            known.add(key)
        assert answers == expected


class TestCleanAccountFastPath:
    """Clean rows take a fast path; it must agree with the full checks on every input."""

    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "principal",
                    "interest",
                    "fees",
                    "penalty",
                    "minimum_due",
                    "overdue_amount",
                    "credit_limit",
                ]
            ),
            st.text(alphabet="0123456789.-+,e ²٣", max_size=16),
        ),
        st.text(alphabet="0123456789-²", max_size=6),
        st.sampled_from(["", "current", "delinquent", "legal", "bogus"]),
    )
    def test_same_answer_as_the_full_checks(
        self, amounts: dict[str, str], days: str, status: str
    ) -> None:
        from recoup.ingest import rules

        row = account(**amounts, days_past_due=days, status=status)
        fast = rules._plain_account(row, CONTEXT)
        if fast is None:
            return
        original = rules._plain_account
        try:
            rules._plain_account = lambda _raw, _context: None  # type: ignore[assignment]
            full = rules.validate_account(row, CONTEXT)
        finally:
            rules._plain_account = original
        assert full == fast

    def test_rows_with_compliance_dates_take_the_full_checks(self) -> None:
        from recoup.ingest import rules

        row = account(days_past_due="5", status="delinquent")
        plain = rules.plain_account_values(row, CONTEXT)
        assert plain is not None
        assert rules.AccountRecord(*plain) == validate_account(row, CONTEXT)
        for name in rules.ACCOUNT_FACT_DATES:
            assert rules.plain_account_values({**row, name: "2024-01-02"}, CONTEXT) is None
            checked = validate_account({**row, name: "2024-01-02"}, CONTEXT)
            assert isinstance(checked, rules.AccountRecord)
            assert getattr(checked, name) == date(2024, 1, 2)

    @pytest.mark.parametrize("days", ["²", "٣", "1_000", " 5"])
    def test_odd_digits_in_days_past_due_are_rejected_not_crashing(self, days: str) -> None:
        result = validate_account(account(days_past_due=days), CONTEXT)
        assert isinstance(result, list) or result.days_past_due == 5


class TestImportRunStatus:
    NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("status", "silent_for", "shown"),
        [
            ("running", timedelta(seconds=5), "running"),
            ("running", IMPORT_HEARTBEAT_TIMEOUT, "running"),
            ("running", IMPORT_HEARTBEAT_TIMEOUT + timedelta(seconds=1), "interrupted"),
            ("running", timedelta(days=3), "interrupted"),
            ("completed", timedelta(days=3), "completed"),
            ("failed", timedelta(days=3), "failed"),
            ("interrupted", timedelta(0), "interrupted"),
        ],
    )
    def test_a_running_import_whose_heartbeat_stopped_shows_as_interrupted(
        self, status: str, silent_for: timedelta, shown: str
    ) -> None:
        assert (
            import_run_status(status, last_heartbeat=self.NOW - silent_for, now=self.NOW) == shown
        )


class TestStorable:
    def test_nul_and_undecodable_bytes_become_replacement_characters(self) -> None:
        # PostgreSQL text refuses NUL: a reject reason or value must never carry one.
        assert storable("深圳\x00市\udcff") == "深圳\ufffd市\ufffd"
