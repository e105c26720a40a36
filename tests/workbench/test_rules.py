"""Promise rules: which promises may be made, and what reconciliation makes of them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoup.workbench import rules
from recoup.workbench.rules import AccountFacts, PromiseSettings, PromiseTerms

TODAY = date(2026, 3, 10)
SETTINGS = PromiseSettings()
OPEN = AccountFacts(status="delinquent", balance=100_000, currency="CNY", has_pending_promise=False)


def _codes(terms: PromiseTerms, account: AccountFacts = OPEN) -> list[str]:
    problems = rules.promise_problems(terms, account, today=TODAY, settings=SETTINGS)
    return [problem.code for problem in problems]


def _terms(
    amount: int = 50_000, currency: str = "CNY", due: date = TODAY, channel: str = "call"
) -> PromiseTerms:
    return PromiseTerms(amount=amount, currency=currency, due_date=due, channel=channel)


@pytest.mark.parametrize(
    ("terms", "account", "expected"),
    [
        (_terms(due=TODAY), OPEN, []),  # due today is allowed
        (_terms(due=TODAY - timedelta(days=1)), OPEN, ["due_in_past"]),
        (_terms(due=TODAY + timedelta(days=30)), OPEN, []),  # last day of the horizon
        (_terms(due=TODAY + timedelta(days=31)), OPEN, ["due_beyond_horizon"]),
        (_terms(amount=100_000), OPEN, []),  # the whole balance
        (_terms(amount=100_001), OPEN, ["amount_over_balance"]),
        (_terms(amount=0), OPEN, ["amount_not_positive"]),
        (_terms(amount=-5), OPEN, ["amount_not_positive"]),
        (_terms(currency="USD"), OPEN, ["currency_mismatch"]),
        (_terms(channel="fax"), OPEN, ["unknown_channel"]),
        (
            _terms(),
            AccountFacts("closed", 100_000, "CNY", has_pending_promise=False),
            ["account_finished"],
        ),
        (
            _terms(),
            AccountFacts("settled", 100_000, "CNY", has_pending_promise=False),
            ["account_finished"],
        ),
        (
            _terms(),
            AccountFacts("charged_off", 100_000, "CNY", has_pending_promise=False),
            [],
        ),
        (
            _terms(),
            AccountFacts("delinquent", 100_000, "CNY", has_pending_promise=True),
            ["pending_exists"],
        ),
    ],
)
def test_promise_problems(terms: PromiseTerms, account: AccountFacts, expected: list[str]) -> None:
    assert _codes(terms, account) == expected


def test_problems_name_the_field_and_the_fix() -> None:
    problems = rules.promise_problems(
        _terms(amount=200_000, currency="USD", due=TODAY + timedelta(days=40)),
        OPEN,
        today=TODAY,
        settings=SETTINGS,
    )
    by_field = {problem.field: problem.message for problem in problems}
    assert set(by_field) == {"amount", "currency", "due_date"}
    assert "at most the balance" in by_field["amount"]
    assert "promise in CNY" in by_field["currency"]
    assert (TODAY + timedelta(days=30)).isoformat() in by_field["due_date"]


DUE = date(2026, 3, 20)


@pytest.mark.parametrize(
    ("paid", "as_of", "expected"),
    [
        (0, DUE, "pending"),
        (0, DUE + timedelta(days=3), "pending"),  # the last grace day still counts
        (0, DUE + timedelta(days=4), "broken"),  # grace over
        (1, DUE + timedelta(days=4), "partially_kept"),
        (9_999, DUE + timedelta(days=4), "partially_kept"),
        (10_000, DUE - timedelta(days=5), "kept"),  # paid in full early: kept at once
        (15_000, DUE + timedelta(days=1), "kept"),  # overpaid
        (5_000, DUE + timedelta(days=2), "pending"),  # partial, grace not over
    ],
)
def test_reconcile(paid: int, as_of: date, expected: str) -> None:
    assert (
        rules.reconcile(amount=10_000, paid=paid, due_date=DUE, as_of=as_of, grace_days=3)
        == expected
    )


def test_payment_window_runs_to_the_last_grace_day() -> None:
    assert rules.payment_window(date(2026, 3, 1), DUE, grace_days=3) == (
        date(2026, 3, 1),
        date(2026, 3, 23),
    )


@pytest.mark.parametrize(
    ("history", "run", "escalate"),
    [
        ([], 0, False),
        (["broken"], 1, False),
        (["broken", "broken"], 2, True),
        (["broken", "cancelled", "broken"], 2, True),  # a cancelled promise does not reset
        (["broken", "pending", "broken"], 2, True),
        (["broken", "kept", "broken"], 1, False),
        (["broken", "partially_kept", "broken"], 1, False),
        (["broken", "broken", "kept"], 0, False),
        (["kept", "broken", "broken", "broken"], 3, True),
    ],
)
def test_two_broken_in_a_row_escalate(history: list[str], run: int, escalate: bool) -> None:
    assert rules.consecutive_broken(history) == run
    assert rules.should_escalate(history) is escalate


@given(
    amount=st.integers(1, 10**9),
    paid=st.integers(0, 2 * 10**9),
    offset=st.integers(-40, 40),
    grace=st.integers(0, 10),
)
def test_reconcile_is_monotone_in_time(amount: int, paid: int, offset: int, grace: int) -> None:
    as_of = DUE + timedelta(days=offset)
    status = rules.reconcile(amount=amount, paid=paid, due_date=DUE, as_of=as_of, grace_days=grace)
    if paid >= amount:
        assert status == "kept"
    elif offset <= grace:
        assert status == "pending"
    else:
        assert status == ("partially_kept" if paid else "broken")
