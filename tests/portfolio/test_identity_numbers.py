import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.portfolio.rules import (
    birth_date_from_resident_id,
    resident_id_check_char,
    resident_id_problem,
    uscc_check_char,
    uscc_problem,
)


class TestResidentId:
    def test_accepts_a_valid_number(self) -> None:
        assert resident_id_problem("11010519491231002X") is None
        assert birth_date_from_resident_id("11010519491231002X").year == 1949

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("110105194912310021", "check digit"),
            ("1101051949123100", "18 characters"),
            ("11010519491331002X", "not a real date"),
            ("1101051949123100XX", "17 digits"),
        ],
    )
    def test_names_the_problem(self, value: str, reason: str) -> None:
        problem = resident_id_problem(value)
        assert problem is not None
        assert reason in problem

    @given(st.text(alphabet="0123456789", min_size=17, max_size=17))
    def test_any_single_digit_change_is_caught(self, body: str) -> None:
        valid = body[:6] + "19900101" + body[14:] + ""
        valid = valid[:17] + resident_id_check_char(valid[:17])
        assert resident_id_problem(valid) is None
        changed = "1" if valid[16] != "1" else "2"
        mistyped = valid[:16] + changed + valid[17]
        assert resident_id_problem(mistyped) is not None


class TestUnifiedSocialCreditCode:
    def test_accepts_a_valid_code(self) -> None:
        assert uscc_problem("91350100M000100Y43") is None

    def test_rejects_a_wrong_check_character(self) -> None:
        problem = uscc_problem("91350100M000100Y44")
        assert problem is not None
        assert "GB 32100" in problem

    def test_rejects_letters_not_in_the_alphabet(self) -> None:
        problem = uscc_problem("91350100M000100YIO")
        assert problem is not None
        assert "not used" in problem

    def test_generated_check_character_validates(self) -> None:
        body = "91110000600037341"
        assert uscc_problem(body + uscc_check_char(body)) is None
