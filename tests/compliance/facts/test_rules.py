"""Pure checks of the facts a person records about a debt before the gate relies on them."""

from __future__ import annotations

from datetime import date

import pytest

from recoup.compliance.facts.rules import account_fact_problems, is_time_barred

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("changes", "stored", "fields"),
    [
        ({"initial_communication_on": date(2026, 11, 28)}, {}, []),
        ({"initial_communication_on": date(2026, 11, 29)}, {}, ["initial_communication_on"]),
        ({"validation_notice_sent_on": date(2026, 12, 1)}, {}, ["validation_notice_sent_on"]),
        ({"time_barred_on": date(2031, 1, 1)}, {}, []),
        (
            {"validation_notice_sent_on": date(2026, 9, 14)},
            {"initial_communication_on": date(2026, 9, 15)},
            ["validation_notice_sent_on"],
        ),
        (
            {"initial_communication_on": date(2026, 9, 16)},
            {"validation_notice_sent_on": date(2026, 9, 15)},
            ["validation_notice_sent_on"],
        ),
        (
            {"initial_communication_on": None},
            {"validation_notice_sent_on": date(2026, 9, 15)},
            [],
        ),
    ],
)
def test_account_fact_problems(
    changes: dict[str, date | None], stored: dict[str, date | None], fields: list[str]
) -> None:
    problems = account_fact_problems(changes, stored, today=TODAY)
    assert [field for field, _message in problems] == fields
    assert all(message for _field, message in problems)


def test_time_barred_from_the_day_the_limitation_runs_out() -> None:
    assert is_time_barred(date(2026, 11, 28), today=TODAY)
    assert not is_time_barred(date(2026, 11, 29), today=TODAY)
    assert not is_time_barred(None, today=TODAY)
